  // LivePerson's part of Tether's page loader, run as `function (tether, settings)`: the
  // identity function and authentication method (installIdentity, above), then the lpTag for
  // the site.
  if (tether.user === "-" && !tether.anonymousWidget) return;
  if (tether.user !== "-") installIdentity();
  var tag = (window.lpTag = window.lpTag || {});
  if (tag.site) return; // the page loads the lpTag itself
  tag.site = settings.site;
  tag.section = tag.section || "";
  tag.autoStart = tag.autoStart !== false;
  tether.load(settings.tag);
