use super::kernel_cost_row;

#[test]
fn kernel_cost_needs_agreeing_rounds() {
    // Five rounds, four of them at or below half of tcpdump's: met.
    let met = "IMP2TEST tcpdump PASS imp2_kns=2000 tcpdump_kns=10000 \
               imp2_kns_all=2000/3000/1000/6000/2500 tcpdump_kns_all=10000/9000/8000/10000/10000";
    assert_eq!(kernel_cost_row(Some(met)).1, Some(true));
    // Three rounds only (the test's default): no verdict whatever they say.
    let few = "imp2_kns=1 tcpdump_kns=10 imp2_kns_all=1/1/1 tcpdump_kns_all=10/10/10";
    let (text, ok) = kernel_cost_row(Some(few));
    assert_eq!(ok, None, "{text}");
    assert!(text.contains("no verdict"), "{text}");
    // Rounds split on both sides of 0.5: no verdict.
    let split =
        "imp2_kns_all=1/9/1/9/1/9 tcpdump_kns_all=10/10/10/10/10/10 imp2_kns=5 tcpdump_kns=10";
    assert_eq!(kernel_cost_row(Some(split)).1, None);
    // Consistently above half: missed.
    let missed = "imp2_kns_all=8/9/7/9/6 tcpdump_kns_all=10/10/10/10/10 imp2_kns=8 tcpdump_kns=10";
    assert_eq!(kernel_cost_row(Some(missed)).1, Some(false));
    // An old line without per-round values.
    assert_eq!(kernel_cost_row(Some("imp2_kns=1 tcpdump_kns=2")).1, None);
}
