/* Tether's page loader, served at {{PREFIX}}/inject/loader.js and put on the app's pages by
 * [inject]: the app's templates stay as they are. It runs each configured vendor's part (a
 * function of `tether` and the vendor's settings) in the order Tether lists them.
 *
 * The tag may say who the page is for: data-tether-user="<key>" (signed in; a keyed hash,
 * never the user id), "-" (nobody), or nothing (Tether could not tell without asking the app).
 * It runs before the vendors' scripts, and hands the page's CSP nonce (if any) to the scripts
 * its parts add.
 */
(function () {
  "use strict";
  var me = document.currentScript;
  var nonce = me ? me.nonce || me.getAttribute("nonce") || "" : "";
  var tether = {
    prefix: "{{PREFIX}}",
    /* "<key>", "-" (nobody), or null (unknown) */
    user: me ? me.getAttribute("data-tether-user") : null,
    /* What Tether told the page about the signed-in visitor for a vendor (JSON), or null. */
    visitor: function (vendor) {
      var text = me ? me.getAttribute("data-tether-" + vendor) : null;
      try { return text ? JSON.parse(text) : null; } catch (e) { return null; }
    },
    anonymousWidget: {{ANONYMOUS_WIDGET}},
    nonce: nonce,
    /* The page key of the user a vendor's widget last knew (it keeps sessions across page
     * loads): get() (null: none), set(key) (null forgets). Storage off: null, forgotten. */
    known: function (vendor) {
      var name = "tether." + vendor + ".user";
      return {
        get: function () {
          try { return window.localStorage.getItem(name); } catch (e) { return null; }
        },
        set: function (key) {
          try {
            if (key === null) window.localStorage.removeItem(name);
            else window.localStorage.setItem(name, key);
          } catch (e) { /* storage off: the widget is reset on every page instead */ }
        }
      };
    },
    /* GETs one of Tether's endpoints for the signed-in visitor: resolves {key, body} (key: the
     * user's page key), or null when nobody is signed in (401); rejects on other failures. A
     * body nobody reads is cancelled (Chromium keeps it pending, holding a connection). */
    ask: function (path) {
      return fetch(this.prefix + path, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { "Accept": "application/json" }
      }).then(function (response) {
        var cancel = function () {
          if (response.body) response.body.cancel().catch(function () {});
        };
        if (response.status === 401) { cancel(); return null; }
        if (!response.ok) {
          cancel();
          throw new Error("tether: " + path + " answered HTTP " + response.status);
        }
        var key = response.headers.get("X-Tether-User-Key") || "";
        return response.json().then(function (body) { return { key: key, body: body }; });
      });
    },
    /* Adds a script to the page, with the page's nonce (and an element id, for vendors'
     * scripts that find themselves by it). */
    load: function (src, id) {
      var script = document.createElement("script");
      script.async = true;
      script.src = src;
      if (id) script.id = id;
      if (nonce) script.nonce = nonce;
      (document.head || document.documentElement).appendChild(script);
      return script;
    }
  };
  var parts = [
{{PARTS}}
  ];
  for (var i = 0; i < parts.length; i++) {
    try {
      parts[i].run(tether, parts[i].settings);
    } catch (error) {
      if (window.console) console.error("tether: the " + parts[i].name + " part failed", error);
    }
  }
})();
