  // Salesforce's part of Tether's page loader, run as `function (tether, settings)`
  // (docs/vendors/salesforce.md, "How the page hands it over").
  //
  // The deployment's bootstrap snippet is the page's own; this part only listens, and it runs
  // before the bootstrap initialises (Tether's tag is in the head). On
  // `onEmbeddedMessagingReady` it fetches a token from Tether and calls `setIdentityToken` (the
  // token lives in the tab's memory: every page load and every tab needs one). On
  // `onEmbeddedMessagingIdentityTokenExpired` it hands over a fresh one within Salesforce's
  // 30-second window. When the user the messaging session was for went away or changed, it
  // calls `clearSession(true)` first (Salesforce fires ready again after it), and
  // `TetherSalesforce.logout()` does that for a single-page app's logout.
  var memory = tether.known("salesforce"); // whom the widget's session was for
  var known = memory.get;
  var remember = memory.set;

  function api() {
    var bootstrap = window.embeddedservice_bootstrap;
    return bootstrap && bootstrap.userVerificationAPI;
  }

  /* Resolves {jwt, key} for the signed-in user, or null when nobody is signed in. */
  function fetchToken() {
    return tether.ask("/salesforce/jwt").then(function (answer) {
      return answer && { jwt: answer.body.jwt, key: answer.key };
    });
  }

  function clear() {
    remember(null);
    if (api()) api().clearSession(true);
  }

  function hand(token) {
    var result = api().setIdentityToken({ identityTokenType: "JWT", identityToken: token.jwt });
    if (result && result.catch) {
      result.catch(function (error) {
        if (window.console) console.warn("tether: Salesforce refused the identity token", error);
      });
    }
  }

  function warn(error) {
    if (window.console) console.warn(String(error));
  }

  window.addEventListener("onEmbeddedMessagingReady", function () {
    fetchToken().then(function (token) {
      var last = known();
      if (!token) {
        if (last !== null) clear();
        return;
      }
      if (last !== null && last !== token.key) {
        // Another user's session: end it; ready fires again, and this user is then known.
        remember(token.key);
        api().clearSession(true);
        return;
      }
      remember(token.key);
      hand(token);
    }, warn);
  });

  window.addEventListener("onEmbeddedMessagingIdentityTokenExpired", function () {
    fetchToken().then(function (token) {
      if (token && token.key === known()) hand(token);
      else clear(); // signed out or another user meanwhile
    }, warn);
  });

  window.TetherSalesforce = { logout: clear };
