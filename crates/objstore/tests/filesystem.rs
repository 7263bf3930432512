//! FILESYSTEM buckets from Thanos-style YAML.

mod common;

use hypnos_objstore::load_bucket;

#[tokio::test]
async fn filesystem_acceptance() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "type: FILESYSTEM\nconfig:\n  directory: {}\n",
        dir.path().join("bkt").display()
    );
    let bkt = load_bucket(None, Some(&yaml)).unwrap();
    assert!(bkt.name().starts_with("file://"), "{}", bkt.name());
    common::acceptance(bkt.as_ref()).await;
    // Objects are plain files under the directory, as with Thanos's filesystem bucket.
    assert_eq!(
        std::fs::read(dir.path().join("bkt/id1/obj_2.some")).unwrap(),
        b"2".to_vec()
    );
    // The emptied directory is gone from disk too.
    assert!(!dir.path().join("bkt/id2").exists());
}

#[tokio::test]
async fn filesystem_prefix_and_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("objstore.yml");
    std::fs::write(
        &cfg,
        format!(
            "type: filesystem\nprefix: tenant-a\nconfig:\n  directory: {}\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let bkt = load_bucket(Some(&cfg), None).unwrap();
    bkt.put("01ARZ3NDEKTSV4RRFFQ69G5FAV/meta.json", "{}".into())
        .await
        .unwrap();
    assert!(
        dir.path()
            .join("tenant-a/01ARZ3NDEKTSV4RRFFQ69G5FAV/meta.json")
            .is_file()
    );
    assert_eq!(bkt.iter("", false).await.unwrap(), ["01ARZ3NDEKTSV4RRFFQ69G5FAV/"]);
}

#[tokio::test]
async fn filesystem_objects_are_local_files() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "type: FILESYSTEM\nprefix: p\nconfig:\n  directory: {}\n",
        dir.path().display()
    );
    let bkt = load_bucket(None, Some(&yaml)).unwrap();
    bkt.put("01ARZ3NDEKTSV4RRFFQ69G5FAV/chunks/000001", "chunk bytes".into())
        .await
        .unwrap();
    let path = bkt.local_path("01ARZ3NDEKTSV4RRFFQ69G5FAV/chunks/000001").unwrap();
    assert_eq!(path, dir.path().join("p/01ARZ3NDEKTSV4RRFFQ69G5FAV/chunks/000001"));
    assert_eq!(std::fs::read(&path).unwrap(), b"chunk bytes");
    // Keys that name no object are refused as keys, not mapped to odd paths.
    assert_eq!(bkt.local_path("/abs"), None);
    assert_eq!(bkt.local_path(""), None);
    // Remote (here: in-memory) buckets have no local files.
    let mem = hypnos_objstore::ObjectStoreBucket::in_memory();
    assert_eq!(hypnos_objstore::Bucket::local_path(&mem, "a/b"), None);
}
