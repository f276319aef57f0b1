//! Jittered `Retry-After` values.
//!
//! Owns the spreading of retry delays. It must not draw random numbers:
//! the caller passes one, so the result is reproducible in tests.
//!
//! In 2021 refused clients came back all at once and the bubble of
//! retries knocked the platforms over again. Spreading the delays of
//! clients refused in the same instant evens their return out.

/// A `Retry-After` in whole seconds, uniformly spread over
/// `[base, 2 × base]` by `rng_value` (any uniformly random `u64`): never
/// sooner than `base`, the server's own estimate, and spread over a window
/// as wide as `base`. A `base` of 0 counts as 1 second.
pub fn retry_after_secs(base_secs: u32, rng_value: u64) -> u32 {
    let base = base_secs.max(1);
    let spread = u64::from(base) + 1;
    // The modulo bias of a u64 over at most 2^32 values is below 2^-32.
    let extra = rng_value % spread;
    base.saturating_add(u32::try_from(extra).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64: a reproducible stream of well-spread u64s.
    fn splitmix(seed: &mut u64) -> u64 {
        *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    #[test]
    fn values_stay_within_base_and_twice_base() {
        let cases = [
            (0, 1, 2),
            (1, 1, 2),
            (5, 5, 10),
            (30, 30, 60),
            (u32::MAX, u32::MAX, u32::MAX),
        ];
        let mut seed = 7;
        for (base, low, high) in cases {
            for _ in 0..10_000 {
                let v = retry_after_secs(base, splitmix(&mut seed));
                assert!((low..=high).contains(&v), "base {base}: {v}");
            }
            assert_eq!(retry_after_secs(base, 0), low);
        }
        assert_eq!(retry_after_secs(5, 5), 10);
        assert_eq!(retry_after_secs(5, u64::MAX), 5 + (u64::MAX % 6) as u32);
    }

    #[test]
    fn a_thousand_refused_clients_are_spread_over_the_whole_window() {
        let mut seed = 2021;
        let mut per_second = [0u32; 31];
        for _ in 0..1_000 {
            let v = retry_after_secs(15, splitmix(&mut seed));
            per_second[(v - 15) as usize] += 1;
        }
        // Every second of [15, 30] gets some clients, none gets a crowd.
        let used = &per_second[..16];
        assert!(used.iter().all(|&n| n > 0), "{used:?}");
        assert!(used.iter().all(|&n| n < 1_000 / 16 * 2), "{used:?}");
        assert!(per_second[16..].iter().all(|&n| n == 0));
    }

    #[test]
    fn the_same_random_input_gives_the_same_value() {
        for rng in [0, 1, 12_345, u64::MAX] {
            assert_eq!(retry_after_secs(10, rng), retry_after_secs(10, rng));
        }
    }
}
