//! imp2-bench-report: runs the comparisons of issue 5 side by side in one
//! run and writes BENCHMARKS.md. The work is in `imp2_benches::report`
//! (measuring apart from rendering), whose documentation gives the usage.

fn main() {
    imp2_benches::report::main()
}
