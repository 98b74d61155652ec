  // Intercom's part of Tether's page loader, run as `function (tether, settings)`
  // (docs/vendors/intercom.md, "How the Messenger receives them").
  //
  // The Messenger boots from `window.intercomSettings` when its script loads, so the values
  // come first: the loader fetches them from Tether (which, on that answer, expires the
  // Messenger's session cookie when it belonged to another user or to someone who left), sets
  // `intercomSettings`, then loads the script. Nobody signed in: the Messenger boots anonymous
  // (or not at all when anonymous widgets are off).
  //
  // For single-page apps: `TetherIntercom.update(attributes)` fetches fresh values for every
  // identified update (Intercom refuses an update without them), and shuts the Messenger down
  // and boots it again when the user changed; `TetherIntercom.logout()` shuts it down. With
  // `intercom_user_jwt`, the values are renewed before they expire.
  var VALUE_KEYS = ["app_id", "user_id", "intercom_user_jwt", "user_hash", "email", "name"];
  var current = null; // the page key of the user the Messenger was booted for ("" anonymous)
  var renewal = null;

  /* Resolves the values for whoever is signed in (null: nobody). */
  function fetchValues() {
    return tether.ask("/intercom/settings").then(function (answer) {
      if (!answer) return null;
      var values = {};
      VALUE_KEYS.forEach(function (name) {
        if (name in answer.body) values[name] = answer.body[name];
      });
      return { key: answer.key, values: values, expiresIn: answer.body.expires_in || 0 };
    });
  }

  function settingsFor(answer, extra) {
    var merged = { app_id: settings.app_id };
    var page = window.intercomSettings || {};
    for (var name in page) {
      // The page's own attributes stay; identity comes from Tether only.
      if (VALUE_KEYS.indexOf(name) < 0) merged[name] = page[name];
    }
    for (name in extra || {}) merged[name] = extra[name];
    if (answer) for (name in answer.values) merged[name] = answer.values[name];
    return merged;
  }

  function scheduleRenewal(answer) {
    if (renewal) clearTimeout(renewal);
    renewal = null;
    if (!answer || !answer.expiresIn) return;
    // Renew at 90% of the lifetime, so Intercom never holds an expired token.
    renewal = setTimeout(function () { update(); }, answer.expiresIn * 900);
  }

  function intercom() {
    return typeof window.Intercom === "function" ? window.Intercom : null;
  }

  /* The real snippet's queue, so page code may call Intercom(...) before the script loads. */
  function installQueue() {
    if (intercom()) return;
    var queue = function () { queue.c(arguments); };
    queue.q = [];
    queue.c = function (args) { queue.q.push(args); };
    window.Intercom = queue;
  }

  function firstBoot(answer) {
    current = answer ? answer.key : "";
    window.intercomSettings = settingsFor(answer);
    scheduleRenewal(answer);
    if (!answer && !tether.anonymousWidget) return;
    installQueue();
    tether.load(settings.widget);
  }

  function update(extra) {
    return fetchValues().then(function (answer) {
      var key = answer ? answer.key : "";
      var messenger = intercom();
      if (!messenger) return firstBoot(answer);
      if (key !== current) {
        messenger("shutdown");
        current = key;
        window.intercomSettings = settingsFor(answer, extra);
        if (answer || tether.anonymousWidget) messenger("boot", window.intercomSettings);
      } else {
        messenger("update", settingsFor(answer, extra));
      }
      scheduleRenewal(answer);
    });
  }

  function logout() {
    var messenger = intercom();
    if (messenger) messenger("shutdown");
    current = "";
    scheduleRenewal(null);
    // Lets Tether expire the session cookie and its marker server-side too.
    return fetchValues().then(function () {}, function () {});
  }

  window.TetherIntercom = { update: update, logout: logout };
  var sessionCookie = "intercom-session-" + settings.app_id + "=";
  if (tether.user === "-" && document.cookie.indexOf(sessionCookie) < 0) {
    firstBoot(null); // nobody, and no session to end: nothing to ask
  } else {
    fetchValues().then(firstBoot, function (error) {
      if (window.console) console.warn(String(error));
    });
  }
