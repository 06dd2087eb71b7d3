//! What the two compressed tar formats (gzip, zstd) provide to the tar walk and to member
//! reads: a scan of the whole decompressed stream that records restart points, and a
//! reader that starts at any offset of that stream from the nearest restart point.

use std::io;

use super::{over_limit, Checkpoint, Limits};

/// A decompressor reading a whole compressed archive once, for the index: `Read` gives the
/// decompressed stream; restart points are recorded as it goes, about every
/// [`super::CHECKPOINT_SPACING`] bytes of output (where the format allows). It fails with
/// an `InvalidData` error once the output exceeds [`super::Limits::max_total`] or
/// `max_ratio` times the input read so far (plus a small allowance for the first bytes).
pub(crate) trait Scan: io::Read + Send {
    /// The restart points recorded, in order of output offset; the first is at 0.
    fn finish(self: Box<Self>) -> Vec<Checkpoint>;
}

/// Output allowed beyond `max_ratio` times the input, so that the first blocks of a stream
/// (headers, a run of zeros) are not taken for a bomb.
const ALLOWANCE: u64 = 1 << 20;

/// Fails once the output passes the total cap or the ratio cap, so a bomb stops early.
pub(crate) fn check_limits(total: u64, consumed: u64, limits: &Limits) -> io::Result<()> {
    if total > limits.max_total {
        return Err(over_limit(format!("archive expands past {} bytes", limits.max_total)));
    }
    if total > limits.max_ratio.saturating_mul(consumed).saturating_add(ALLOWANCE) {
        return Err(over_limit(format!("archive expands more than {} times", limits.max_ratio)));
    }
    Ok(())
}
