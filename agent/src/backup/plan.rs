//! Which chunks of a disk a backup reads: fixed-size chunks, and changed-block tracking to
//! skip what did not change (take the previous backup's chunk) or was never written (zeros).

use bgw_protocol::backup::ChunkHash;
use vsphere_client::DiskArea;

/// Where one chunk's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkSource {
    /// Read it from the disk.
    Read,
    /// Unallocated: all zeros, not read.
    Zero,
    /// Unchanged since the previous backup: that backup's chunk.
    Reuse(ChunkHash),
}

/// What changed-block tracking says about a disk.
#[derive(Debug, Clone, Copy)]
pub enum Changes<'a> {
    /// Nothing known: read every chunk.
    Unknown,
    /// The allocated areas (`QueryChangedDiskAreas` with `*`): the rest reads as zeros.
    Allocated(&'a [DiskArea]),
    /// What changed since the previous backup, whose chunk list (same capacity, same chunk
    /// size) supplies the rest.
    Since {
        changed: &'a [DiskArea],
        previous: &'a [ChunkHash],
    },
}

/// How many chunks a disk of `capacity` bytes has.
pub fn chunk_count(capacity: u64, chunk_size: u64) -> usize {
    capacity.div_ceil(chunk_size) as usize
}

/// The byte range of chunk `index`.
pub fn chunk_range(index: usize, capacity: u64, chunk_size: u64) -> std::ops::Range<u64> {
    let start = index as u64 * chunk_size;
    start..(start + chunk_size).min(capacity)
}

/// The source of every chunk of a disk. Areas are sorted (as `changed_disk_areas` returns
/// them); a chunk any area overlaps is read whole.
pub fn plan(capacity: u64, chunk_size: u64, changes: Changes<'_>) -> Vec<ChunkSource> {
    let n = chunk_count(capacity, chunk_size);
    let (areas, previous) = match changes {
        Changes::Unknown => return vec![ChunkSource::Read; n],
        Changes::Allocated(a) => (a, None),
        Changes::Since { changed, previous } => {
            if previous.len() != n {
                return vec![ChunkSource::Read; n];
            }
            (changed, Some(previous))
        }
    };
    let mut touched = vec![false; n];
    for a in areas {
        if a.length == 0 || a.start >= capacity {
            continue;
        }
        let first = (a.start / chunk_size) as usize;
        let last = ((a.end().min(capacity) - 1) / chunk_size) as usize;
        for t in &mut touched[first..=last.min(n - 1)] {
            *t = true;
        }
    }
    touched
        .into_iter()
        .enumerate()
        .map(|(i, t)| match (t, previous) {
            (true, _) => ChunkSource::Read,
            (false, None) => ChunkSource::Zero,
            (false, Some(p)) => ChunkSource::Reuse(p[i].clone()),
        })
        .collect()
}

/// The name of a chunk of `len` zero bytes.
pub fn zero_hash(len: u64) -> ChunkHash {
    use std::sync::OnceLock;
    static FULL: OnceLock<ChunkHash> = OnceLock::new();
    let compute = || ChunkHash::of(&vec![0u8; len as usize]);
    if len == bgw_protocol::backup::DEFAULT_CHUNK_SIZE {
        FULL.get_or_init(compute).clone()
    } else {
        compute()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn area(start: u64, length: u64) -> DiskArea {
        DiskArea { start, length }
    }

    fn hash(c: char) -> ChunkHash {
        c.to_string().repeat(64).parse().unwrap()
    }

    #[test]
    fn without_tracking_every_chunk_is_read_and_the_last_is_short() {
        let p = plan(10 * MIB, 4 * MIB, Changes::Unknown);
        assert_eq!(p, vec![ChunkSource::Read; 3]);
        assert_eq!(chunk_range(2, 10 * MIB, 4 * MIB), 8 * MIB..10 * MIB);
        assert_eq!(chunk_count(0, 4 * MIB), 0);
    }

    #[test]
    fn unallocated_chunks_are_zeros() {
        let allocated = [area(0, 512), area(9 * MIB - 1, 2)];
        let p = plan(16 * MIB, 4 * MIB, Changes::Allocated(&allocated));
        use ChunkSource::*;
        assert_eq!(p, vec![Read, Zero, Read, Zero]);
    }

    #[test]
    fn unchanged_chunks_come_from_the_previous_backup() {
        let previous = [hash('a'), hash('b'), hash('c')];
        let changed = [area(4 * MIB + 10, 10), area(20 * MIB, 5)];
        let p = plan(
            12 * MIB,
            4 * MIB,
            Changes::Since {
                changed: &changed,
                previous: &previous,
            },
        );
        use ChunkSource::*;
        assert_eq!(p, vec![Reuse(hash('a')), Read, Reuse(hash('c'))]);
        // A previous list of another geometry cannot be trusted.
        let p = plan(
            16 * MIB,
            4 * MIB,
            Changes::Since {
                changed: &changed,
                previous: &previous,
            },
        );
        assert_eq!(p, vec![Read; 4]);
    }

    #[test]
    fn the_zero_chunk_is_named_by_its_content() {
        assert_eq!(zero_hash(4), ChunkHash::of(&[0, 0, 0, 0]));
        assert_eq!(zero_hash(4 * MIB), ChunkHash::of(&vec![0; 4 << 20]));
    }
}
