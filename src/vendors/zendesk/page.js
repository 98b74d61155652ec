  // Zendesk's part of Tether's page loader, run as `function (tether, settings)`
  // (docs/vendors/zendesk.md, "How the widget asks").
  //
  // Loads the widget snippet (`<script id="ze-snippet">`: the snippet finds its key by that id),
  // then, as soon as `zE` exists: for a signed-in visitor `loginUser`, whose callback fetches a
  // fresh token from Tether every time the widget asks (at sign-in and when its token runs out);
  // `logoutUser` first when the widget last knew another user, and alone when the visitor is
  // anonymous and it knew one (the widget keeps an authenticated conversation across page
  // loads). `TetherZendesk.logout()` does the same for a single-page app's logout, and
  // `TetherZendesk.login()` logs in whoever is signed in now (after a single-page login).
  var memory = tether.known("zendesk"); // whom the widget's session was for
  var known = memory.get;
  var remember = memory.set;
  var primed = null; // a token fetched to learn who is signed in, for the first callback

  /* Resolves {jwt, key} for the signed-in user, or null when nobody is signed in. */
  function fetchToken() {
    return tether.ask("/zendesk/jwt").then(function (answer) {
      return answer && { jwt: answer.body.jwt, key: answer.key };
    });
  }

  function jwtCallback(callback) {
    var token = primed;
    primed = null;
    if (token) { callback(token.jwt); return; }
    fetchToken().then(function (fresh) {
      if (fresh) callback(fresh.jwt);
      else logout(); // signed out meanwhile
    }, function (error) {
      if (window.console) console.warn(String(error));
    });
  }

  function logout() {
    if (typeof window.zE === "function") window.zE("messenger", "logoutUser");
    remember(null);
  }

  function login(key) {
    var last = known();
    if (last !== null && last !== key) window.zE("messenger", "logoutUser");
    remember(key);
    window.zE("messenger", "loginUser", jwtCallback, function (error) {
      if (error && window.console) console.warn("tether: Zendesk refused the login", error);
    });
  }

  function start() {
    if (tether.user === "-") {
      if (known() !== null) logout();
    } else if (tether.user) {
      login(tether.user);
    } else {
      fetchToken().then(function (token) {
        if (!token) { if (known() !== null) logout(); return; }
        primed = token;
        login(token.key);
      }, function (error) {
        if (window.console) console.warn(String(error));
      });
    }
  }

  window.TetherZendesk = { logout: logout, login: start };
  // A visitor known to be anonymous gets no widget when anonymous widgets are off, unless the
  // widget still holds someone's session: it is loaded to log that out.
  if (tether.user !== "-" || tether.anonymousWidget || known() !== null) {
    tether.load(settings.snippet, "ze-snippet").addEventListener("load", start);
  }
