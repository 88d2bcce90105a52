/* Light or dark, as the rest of Cockpit: the shell keeps the choice in localStorage
 * ("shell:style": auto, light or dark) and tells its pages with a "cockpit-style"
 * event; "auto" follows the browser's prefers-color-scheme. */
(function () {
    "use strict";

    function apply(style) {
        const chosen = style || window.localStorage.getItem("shell:style") || "auto";
        const prefersDark = window.matchMedia &&
            window.matchMedia("(prefers-color-scheme: dark)").matches;
        const dark = chosen === "dark" || (chosen === "auto" && prefersDark);
        document.documentElement.classList.toggle("pf-theme-dark", dark);
    }

    window.addEventListener("storage", function (event) {
        if (event.key === "shell:style")
            apply();
    });
    window.addEventListener("cockpit-style", function (event) {
        if (event instanceof CustomEvent && event.detail)
            apply(event.detail.style);
    });
    if (window.matchMedia)
        window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () { apply() });
    apply();
}());
