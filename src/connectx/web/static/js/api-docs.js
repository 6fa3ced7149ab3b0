// Start Swagger UI (swagger-ui-dist from npm, static/vendor) on the API reference page. Kept out
// of the HTML because the Content-Security-Policy forbids inline scripts.
"use strict";

window.addEventListener("DOMContentLoaded", function () {
  var url = document.body.dataset.openapiUrl || "/openapi.json";
  window.ui = window.SwaggerUIBundle({
    url: url,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
