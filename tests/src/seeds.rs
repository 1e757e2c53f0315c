//! Which seeds a suite runs.
//!
//! By default a suite runs seeds `0..count`. `KONTIKI_SEED=<n>` runs only
//! seed `n` (to replay a failure); `KONTIKI_SEEDS=<n>` runs `0..n` instead
//! of the suite's default count (for long soaks). Seeds that a longer
//! run once found failing are replayed in every run but a single seed's.

/// The seeds to run for a suite whose default is `default_count` seeds.
pub fn seeds(default_count: u64) -> Vec<u64> {
    if let Some(seed) = env_number("KONTIKI_SEED") {
        return vec![seed];
    }
    let count = env_number("KONTIKI_SEEDS").unwrap_or(default_count);
    (0..count).collect()
}

/// [`seeds`], followed (unless `KONTIKI_SEED` picks one seed) by each of
/// `regressions` that the range leaves out: seeds a longer run found
/// failing, replayed from then on.
pub fn seeds_with_regressions(default_count: u64, regressions: &[u64]) -> Vec<u64> {
    let mut seeds = seeds(default_count);
    if env_number("KONTIKI_SEED").is_none() {
        let missing: Vec<u64> = regressions
            .iter()
            .copied()
            .filter(|seed| !seeds.contains(seed))
            .collect();
        seeds.extend(missing);
    }
    seeds
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.trim().parse() {
        Ok(number) => Some(number),
        Err(_) => panic!("{name} must be a non-negative integer, got {value:?}"),
    }
}
