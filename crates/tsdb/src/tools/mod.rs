//! The logic behind `hypnos tools tsdb …` and `hypnos tools block …`, shaped like
//! promtool's `tsdb` commands so their outputs can be diffed.

pub mod analyze;
pub mod create;
pub mod dump;
pub mod list;
pub mod verify;

/// Progress reporting for long runs: `(done, total)`; total may be 0 when unknown.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// A progress sink that reports nothing.
pub fn no_progress(_: u64, _: u64) {}

/// The blocks to work on: `dir` itself if it is a block, else the blocks under it.
pub fn blocks_in(dir: &std::path::Path) -> crate::Result<Vec<std::path::PathBuf>> {
    if dir.join(crate::meta::META_FILENAME).is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    crate::block::block_dirs(dir)
}
