//! The app's own JSON "who am I" (`/api/me`): the user at `probe_json_user`, email and name at
//! their pointers; every other answer fails closed, counted.

use crate::World;

async fn world() -> World {
    World::start(|config| {
        config.identity.probe_path = "/api/me".into();
        config.identity.probe_json_user = "/user/id".into();
        config.identity.probe_json_email = "/user/email".into();
        config.identity.probe_json_name = "/user/name".into();
    })
    .await
}

#[tokio::test]
async fn the_apps_json_names_the_user() {
    let world = world().await;
    let session = |user: &str| format!("session={user}");
    assert_eq!(
        world.who(&[("cookie", &session("alice"))]).await,
        Ok(("alice".into(), Some("User alice".into())))
    );
    // An integer id is unambiguous: 42 is "42".
    assert_eq!(
        world.who(&[("cookie", &session("__int"))]).await,
        Ok(("42".into(), None))
    );
    // Nobody: no session (401), a null user, no user member.
    assert_eq!(world.who(&[]).await, Err(401));
    assert_eq!(world.who(&[("cookie", &session("__null"))]).await, Err(401));
    assert_eq!(
        world.who(&[("cookie", &session("__missing"))]).await,
        Err(401)
    );
    // Fail closed: a float or list id, plain text, an answer over 64 KiB.
    for (user, reason) in [
        ("__float", "user_not_a_string"),
        ("__list", "user_not_a_string"),
        ("__text", "not_json"),
        ("__big", "too_large"),
    ] {
        assert_eq!(
            world.who(&[("cookie", &session(user))]).await,
            Err(502),
            "{user}"
        );
        assert!(
            world
                .counted("tether_identity_answers_rejected_total", reason)
                .await
                >= 1,
            "{user} counted as {reason}"
        );
    }
    let probe = world.app.last("/api/me");
    assert_eq!(probe.header("accept"), Some("application/json"));
}
