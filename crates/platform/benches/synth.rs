//! Synthesis of the default config into in-memory JSON strings (every template plus the manifest).

use criterion::{Criterion, criterion_group, criterion_main};
use lifeboat_config::Config;

fn synth_default(c: &mut Criterion) {
    let config = Config::default();
    c.bench_function("synth default config", |b| {
        b.iter(|| {
            let synthesis = lifeboat_platform::synthesize(std::hint::black_box(&config))
                .expect("default config synthesizes");
            synthesis.render().expect("default config renders")
        })
    });
}

criterion_group!(benches, synth_default);
criterion_main!(benches);
