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
