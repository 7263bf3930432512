//! The behaviour every back end must share (after Thanos's objstore acceptance test).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::Write;

use bytes::Bytes;
use hypnos_objstore::{Bucket, BucketError};

pub async fn acceptance(bkt: &dyn Bucket) {
    // Missing objects.
    assert!(bkt.get("id1/obj_1.some").await.unwrap_err().is_not_found());
    assert!(bkt.head("id1/obj_1.some").await.unwrap_err().is_not_found());
    assert!(!bkt.exists("id1/obj_1.some").await.unwrap());
    assert!(bkt.iter("", false).await.unwrap().is_empty());
    assert!(bkt.iter("id1", false).await.unwrap().is_empty());
    // Deleting what is not there succeeds.
    bkt.delete("id1/obj_1.some").await.unwrap();

    // Writes and reads.
    bkt.put("id1/obj_1.some", Bytes::from_static(b"@test-data@"))
        .await
        .unwrap();
    assert_eq!(&bkt.get("id1/obj_1.some").await.unwrap()[..], b"@test-data@");
    assert!(bkt.exists("id1/obj_1.some").await.unwrap());
    assert_eq!(bkt.head("id1/obj_1.some").await.unwrap().size, 11);
    // Overwrite replaces.
    bkt.put("id1/obj_1.some", Bytes::from_static(b"@test-data2@"))
        .await
        .unwrap();
    assert_eq!(&bkt.get("id1/obj_1.some").await.unwrap()[..], b"@test-data2@");

    // Ranged reads.
    assert_eq!(&bkt.get_range("id1/obj_1.some", 1..4).await.unwrap()[..], b"tes");
    assert_eq!(&bkt.get_range("id1/obj_1.some", 3..3).await.unwrap()[..], b"");
    assert_eq!(&bkt.get_range("id1/obj_1.some", 6..100).await.unwrap()[..], b"data2@");
    assert!(bkt.get_range("id1/obj_1.some", 100..200).await.is_err());
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = 5..2;
    assert!(matches!(
        bkt.get_range("id1/obj_1.some", reversed).await,
        Err(BucketError::InvalidRange { .. })
    ));
    assert!(bkt.get_range("id1/missing", 0..2).await.unwrap_err().is_not_found());
    let parts = bkt
        .get_ranges("id1/obj_1.some", &[0..1, 1..5, 2..2, 10..1 << 40])
        .await
        .unwrap();
    let parts: Vec<&[u8]> = parts.iter().map(|b| &b[..]).collect();
    assert_eq!(parts, [&b"@"[..], b"test", b"", b"2@"]);
    assert!(bkt.get_ranges("id1/obj_1.some", &[0..1, 50..60]).await.is_err());

    // Listing: directories with a trailing '/', sorted; recursive lists objects only.
    bkt.put("id1/obj_2.some", Bytes::from_static(b"2")).await.unwrap();
    bkt.put("id1/sub/obj_3.some", Bytes::from_static(b"3")).await.unwrap();
    bkt.put("id2/obj_4.some", Bytes::from_static(b"4")).await.unwrap();
    bkt.put("obj_5.some", Bytes::from_static(b"5")).await.unwrap();
    assert_eq!(bkt.iter("", false).await.unwrap(), ["id1/", "id2/", "obj_5.some"]);
    assert_eq!(
        bkt.iter("id1", false).await.unwrap(),
        ["id1/obj_1.some", "id1/obj_2.some", "id1/sub/"]
    );
    assert_eq!(
        bkt.iter("id1/", false).await.unwrap(),
        bkt.iter("id1", false).await.unwrap()
    );
    assert_eq!(
        bkt.iter("id1", true).await.unwrap(),
        ["id1/obj_1.some", "id1/obj_2.some", "id1/sub/obj_3.some"]
    );
    assert_eq!(bkt.iter("", true).await.unwrap().len(), 5);
    let with_attrs = bkt.iter_with_attributes("id1").await.unwrap();
    let sizes: Vec<(&str, u64)> = with_attrs.iter().map(|(k, a)| (k.as_str(), a.size)).collect();
    assert_eq!(
        sizes,
        [("id1/obj_1.some", 12), ("id1/obj_2.some", 1), ("id1/sub/obj_3.some", 1)]
    );
    // A directory is a key prefix by whole segments: "id" is not "id1/".
    assert!(bkt.iter("id", false).await.unwrap().is_empty());

    // Deletes; an emptied directory disappears from listings.
    bkt.delete("id2/obj_4.some").await.unwrap();
    assert!(!bkt.exists("id2/obj_4.some").await.unwrap());
    assert_eq!(bkt.iter("", false).await.unwrap(), ["id1/", "obj_5.some"]);

    // Invalid keys are refused before any request.
    for key in ["", "/abs", "dir/", "a//b", "a/../b"] {
        assert!(
            matches!(bkt.get(key).await, Err(BucketError::InvalidKey { .. })),
            "key {key:?}"
        );
    }

    // Files: a small one, and one above the part size that goes up in parts.
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::write(&small, b"small file").unwrap();
    bkt.put_file("files/small", &small).await.unwrap();
    assert_eq!(&bkt.get("files/small").await.unwrap()[..], b"small file");

    let big = dir.path().join("big");
    let big_data: Vec<u8> = (0..(21u32 << 20) / 4).flat_map(|i| i.to_le_bytes()).collect();
    std::fs::File::create(&big).unwrap().write_all(&big_data).unwrap();
    bkt.put_file("files/big", &big).await.unwrap();
    assert_eq!(bkt.head("files/big").await.unwrap().size, big_data.len() as u64);
    let back = dir.path().join("back");
    assert_eq!(
        bkt.get_to_file("files/big", &back).await.unwrap(),
        big_data.len() as u64
    );
    assert!(std::fs::read(&back).unwrap() == big_data, "downloaded file differs");
    let mid = (10u64 << 20)..((10u64 << 20) + 4096);
    assert_eq!(
        &bkt.get_range("files/big", mid.clone()).await.unwrap()[..],
        &big_data[mid.start as usize..mid.end as usize]
    );
    assert!(bkt.get_to_file("files/none", &back).await.unwrap_err().is_not_found());
    assert!(
        std::fs::read(&back).unwrap() == big_data,
        "a failed download must not clobber the file"
    );
    assert!(
        bkt.put_file("files/x", &dir.path().join("nope")).await.is_err(),
        "missing local file"
    );
}
