//! Content-defined chunking of file contents.
//!
//! Files travel as chunks whose boundaries depend on the bytes around them
//! rather than on fixed offsets, so an edit in the middle of a big file
//! changes only the chunks it touches: the others keep their content, hash
//! and boundaries and are not sent again.
//!
//! Every client must cut identical content identically for that to work
//! across computers, so the algorithm and every parameter here (sizes,
//! normalization level, hash seed) are part of the relay format in practice:
//! changing one makes every existing chunk look new.

use std::io::{self, Read};

use fastcdc::v2020::{Normalization, StreamCDC};

/// Smallest chunk, except for the last chunk of a file (or a small file).
pub(crate) const MIN_CHUNK: u32 = 256 * 1024;

/// Size chunks tend towards on varied data.
pub(crate) const AVG_CHUNK: u32 = 1024 * 1024;

/// Largest chunk; data without any boundary (long runs of one byte) is cut
/// at this size.
pub(crate) const MAX_CHUNK: u32 = 4 * 1024 * 1024;

/// Gear-hash seed: fixed, because clients must agree on it (see the module
/// documentation).
const SEED: u64 = 0;

/// One piece of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// Position of the first byte in the file.
    pub(crate) offset: u64,
    /// The bytes, between one byte and [`MAX_CHUNK`] long.
    pub(crate) data: Vec<u8>,
}

/// Splits `reader` into content-defined chunks (FastCDC 2020 with the
/// constants above), calling `each` for each chunk in order; stops at the
/// first error, from reading or from `each`. Holds at most about
/// 2 × [`MAX_CHUNK`] in memory whatever the input size: the chunker's
/// look-ahead buffer and the chunk being handed over. Returns the number of
/// bytes read, which is the file size as it was while being read.
pub(crate) fn for_each_chunk<R: Read>(
    reader: R,
    mut each: impl FnMut(Chunk) -> io::Result<()>,
) -> io::Result<u64> {
    let chunks = StreamCDC::with_level_and_seed(
        RetryInterrupted(reader),
        MIN_CHUNK as usize,
        AVG_CHUNK as usize,
        MAX_CHUNK as usize,
        // Spelled out rather than taken from `StreamCDC::new` so that a new
        // default in fastcdc cannot silently move every boundary.
        Normalization::Level1,
        SEED,
    );
    let mut total = 0;
    for chunk in chunks {
        let chunk = chunk?;
        total += chunk.data.len() as u64;
        each(Chunk {
            offset: chunk.offset,
            data: chunk.data,
        })?;
    }
    Ok(total)
}

/// Retries reads that a signal interrupted, as `std::io::Read::read_exact`
/// does; fastcdc would otherwise report them as failures of the whole file.
struct RetryInterrupted<R>(R);

impl<R: Read> Read for RetryInterrupted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.0.read(buf) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                result => return result,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// One mebibyte, for sizing inputs.
    const MIB: usize = 1024 * 1024;

    /// Reproducible pseudo-random bytes (SplitMix64), so no test depends on
    /// a random crate or on luck.
    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed;
        let mut bytes = Vec::with_capacity(len + 8);
        while bytes.len() < len {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        bytes.truncate(len);
        bytes
    }

    /// All the chunks of `reader`, kept, and the total it reports.
    fn chunks_of(reader: impl Read) -> (Vec<Chunk>, u64) {
        let mut chunks = Vec::new();
        let total = for_each_chunk(reader, |chunk| {
            chunks.push(chunk);
            Ok(())
        })
        .expect("chunking succeeds");
        (chunks, total)
    }

    /// Chunks tile the input exactly and respect the size bounds.
    fn assert_well_formed(input: &[u8], chunks: &[Chunk], total: u64) {
        assert_eq!(total, input.len() as u64);
        let mut offset = 0;
        for (index, chunk) in chunks.iter().enumerate() {
            assert_eq!(chunk.offset, offset, "chunk {index}");
            let len = chunk.data.len();
            assert!(len <= MAX_CHUNK as usize, "chunk {index} has {len} bytes");
            if index + 1 < chunks.len() {
                assert!(len >= MIN_CHUNK as usize, "chunk {index} has {len} bytes");
            } else {
                assert!(len >= 1, "the last chunk is not empty");
            }
            offset += len as u64;
        }
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.data.iter().copied()).collect();
        assert!(
            joined == input,
            "the chunks put together give back the input"
        );
    }

    #[test]
    fn empty_input_gives_no_chunk() {
        let (chunks, total) = chunks_of(&[][..]);
        assert!(chunks.is_empty());
        assert_eq!(total, 0);
    }

    #[test]
    fn small_input_is_one_chunk() {
        for len in [1, 1000, MIN_CHUNK as usize] {
            let input = pseudo_random(len, 1);
            let (chunks, total) = chunks_of(&input[..]);
            assert_eq!(
                chunks,
                [Chunk {
                    offset: 0,
                    data: input.clone()
                }]
            );
            assert_eq!(total, len as u64);
        }
    }

    #[test]
    fn large_input_is_cut_within_bounds() {
        let input = pseudo_random(20 * MIB, 2);
        let (chunks, total) = chunks_of(&input[..]);
        assert_well_formed(&input, &chunks, total);
        // Random data has boundaries: not everything is cut at the maximum.
        assert!(
            chunks.len() > 20 * MIB / MAX_CHUNK as usize,
            "{}",
            chunks.len()
        );
    }

    #[test]
    fn data_without_boundaries_is_cut_at_the_maximum() {
        let input = vec![0u8; 10 * MIB];
        let (chunks, total) = chunks_of(&input[..]);
        assert_well_formed(&input, &chunks, total);
        let (last, full) = chunks.split_last().expect("chunks");
        assert!(full.iter().all(|c| c.data.len() == MAX_CHUNK as usize));
        assert_eq!(last.data.len(), 10 * MIB % MAX_CHUNK as usize);
    }

    #[test]
    fn chunking_is_deterministic() {
        let input = pseudo_random(12 * MIB, 3);
        let (first, _) = chunks_of(&input[..]);
        let (second, _) = chunks_of(&input[..]);
        assert_eq!(first, second);
    }

    /// Hands out data in small, uneven pieces, as pipes and network
    /// filesystems do, and sometimes reports an interruption.
    struct Trickle<'a> {
        data: &'a [u8],
        reads: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            if self.reads.is_multiple_of(5) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let len = (self.reads * 7919 % 4099 + 1)
                .min(buf.len())
                .min(self.data.len());
            buf[..len].copy_from_slice(&self.data[..len]);
            self.data = &self.data[len..];
            Ok(len)
        }
    }

    #[test]
    fn boundaries_do_not_depend_on_how_the_reader_delivers_data() {
        let input = pseudo_random(6 * MIB, 4);
        let (whole, _) = chunks_of(&input[..]);
        let (trickled, total) = chunks_of(Trickle {
            data: &input,
            reads: 0,
        });
        assert_eq!(total, input.len() as u64);
        assert_eq!(whole, trickled);
    }

    #[test]
    fn an_insertion_changes_only_nearby_chunks() {
        let original = pseudo_random(20 * MIB, 5);
        let mut edited = original.clone();
        let middle = original.len() / 2;
        edited.splice(middle..middle, *b"0123456789");

        let (before, _) = chunks_of(&original[..]);
        let (after, total) = chunks_of(&edited[..]);
        assert_well_formed(&edited, &after, total);

        let known: HashSet<&[u8]> = before.iter().map(|c| &c.data[..]).collect();
        let new = after
            .iter()
            .filter(|c| !known.contains(&c.data[..]))
            .count();
        assert!(new >= 1, "the edited chunk is new");
        assert!(new <= 3, "{new} of {} chunks changed", after.len());
    }

    #[test]
    fn a_read_error_stops_chunking() {
        /// Gives its bytes, then fails instead of reporting the end.
        struct FailAfter<'a>(&'a [u8]);
        impl Read for FailAfter<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Err(io::Error::other("disk on fire"));
                }
                let len = buf.len().min(self.0.len());
                buf[..len].copy_from_slice(&self.0[..len]);
                self.0 = &self.0[len..];
                Ok(len)
            }
        }
        let input = pseudo_random(3 * MIB, 6);
        let mut seen = 0;
        let error = for_each_chunk(FailAfter(&input), |_| {
            seen += 1;
            Ok(())
        })
        .expect_err("the read error surfaces");
        assert_eq!(error.to_string(), "disk on fire");
        // The look-ahead buffer is filled before the first cut, so the
        // error comes before any chunk.
        assert_eq!(seen, 0);
    }

    #[test]
    fn an_error_from_the_callback_stops_chunking() {
        let input = pseudo_random(20 * MIB, 7);
        let mut calls = 0;
        let error = for_each_chunk(&input[..], |_| {
            calls += 1;
            if calls == 2 {
                Err(io::Error::other("relay full"))
            } else {
                Ok(())
            }
        })
        .expect_err("the callback error surfaces");
        assert_eq!(error.to_string(), "relay full");
        assert_eq!(calls, 2);
    }

    /// An endless stream that records the largest read it was asked for.
    struct Endless {
        left: u64,
        largest_read: usize,
        state: u8,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.largest_read = self.largest_read.max(buf.len());
            let len = buf
                .len()
                .min(usize::try_from(self.left).unwrap_or(usize::MAX));
            for byte in &mut buf[..len] {
                self.state = self.state.wrapping_mul(173).wrapping_add(89);
                *byte = self.state ^ (self.left as u8);
                self.left -= 1;
            }
            Ok(len)
        }
    }

    #[test]
    fn memory_stays_bounded_on_a_long_stream() {
        let len = 64 * MIB as u64;
        let mut reader = Endless {
            left: len,
            largest_read: 0,
            state: 1,
        };
        let mut largest_chunk = 0;
        let total = for_each_chunk(&mut reader, |chunk| {
            largest_chunk = largest_chunk.max(chunk.data.len());
            Ok(())
        })
        .expect("chunking succeeds");
        assert_eq!(total, len);
        // The stream never sits in memory: the chunker asks for at most one
        // buffer's worth at a time, and chunks are handed over one by one.
        assert!(reader.largest_read <= MAX_CHUNK as usize);
        assert!(largest_chunk <= MAX_CHUNK as usize);
    }
}
