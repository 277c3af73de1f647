//! Runs every program in `examples/` (`cargo test` only builds them):
//! each example is compiled again here as a module and its `main` called,
//! so an example that stops working fails the tests. The PostgreSQL
//! example runs on a database of its own in `example_postgres.rs`.

macro_rules! run_example {
    ($name:ident, $file:literal) => {
        #[path = $file]
        mod $name;

        #[test]
        fn $name() {
            if let Err(e) = $name::main() {
                panic!("example {} failed: {e}", stringify!($name));
            }
        }
    };
}

run_example!(quickstart, "../examples/quickstart.rs");
run_example!(typed_values, "../examples/typed_values.rs");
run_example!(counters_threads, "../examples/counters_threads.rs");
run_example!(branches_merges, "../examples/branches_merges.rs");
run_example!(key_history, "../examples/key_history.rs");
run_example!(gc, "../examples/gc.rs");
run_example!(gitkv_open, "../examples/gitkv_open.rs");
