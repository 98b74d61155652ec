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
