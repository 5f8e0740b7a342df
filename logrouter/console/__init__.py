"""The web console's static files (HTML, CSS, JavaScript modules), served by
:mod:`logrouter.api.console_routes`. No build step: these files are what the browser runs."""
