//! The served provider script in a real browser (headless Chromium), called the way LiveChat's
//! Customer SDK calls it, with users switching on one browser.

use crate::support::browser::{chromium, page_result};
use crate::World;

#[tokio::test]
async fn provider_script_behaves_like_the_customer_sdk_expects() {
    let Some(chromium) = chromium() else { return };
    let world = World::start(|_| {}).await;
    let result = page_result(chromium, format!("{}/page/sdk.html", world.tether.https)).await;
    let expect = |name: &str, value: bool| {
        assert_eq!(result[name], value, "{name} in {result}");
    };
    expect("anonymousRejects", true);
    expect("hasTokenAnonymous", false);
    expect("hasTokenBefore", false);
    expect("hasTokenAfter", true);
    expect("units", true);
    expect("cloneable", true);
    expect("cachedKeepsCreationDate", true);
    expect("moreThanAnHourLeft", true);
    expect("invalidateReturnsPromise", true);
    expect("hasTokenAfterInvalidate", false);
    expect("freshIsNew", true);
    expect("freshSameEntity", true);
    expect("bobHasHisOwnCustomer", true);
    expect("noAliceTokenStoredForBob", true);
    expect("aliceKeepsHerCustomer", true);
    expect("aliceNeverGetsBobsToken", true);
    expect("hasTokenAfterLogout", false);
    assert_eq!(
        world.sandbox.customers_created(),
        2,
        "alice and bob, once each"
    );
}
