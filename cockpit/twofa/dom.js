/* Building the page's elements. Every text is put in as a text node (textContent),
 * never parsed as HTML: what the commands print, a user's name, a device's name or an
 * address can hold "<" and "&" and stays text. Links and images take only the
 * prefixes the page expects (see safeUrl). */
(function () {
    "use strict";

    const SAFE_URL_PREFIXES = ["otpauth://totp/", "data:image/png;base64,", "blob:"];

    /* An attribute value that is a URL the page may point at, or null. */
    function safeUrl(url) {
        if (typeof url !== "string")
            return null;
        return SAFE_URL_PREFIXES.some(prefix => url.startsWith(prefix)) ? url : null;
    }

    function append(node, children) {
        for (const child of children) {
            if (child === null || child === undefined || child === false)
                continue;
            if (Array.isArray(child))
                append(node, child);
            else if (child instanceof Node)
                node.appendChild(child);
            else
                node.appendChild(document.createTextNode(String(child)));
        }
        return node;
    }

    /* el("button", { class: "pf-c-button", onclick: f }, "Save"). */
    function el(tag, props, ...children) {
        const node = document.createElement(tag);
        for (const [key, value] of Object.entries(props || {})) {
            if (value === null || value === undefined || value === false)
                continue;
            if (key === "class")
                node.className = value;
            else if (key === "text")
                node.textContent = String(value);
            else if (key === "dataset")
                Object.assign(node.dataset, value);
            else if (key.toLowerCase().startsWith("on")) {
                // Never an inline handler: an attribute's text would run as script.
                if (typeof value !== "function")
                    throw new TypeError("el(): " + key + " must be a function");
                node.addEventListener(key.slice(2), value);
            }
            else if (key === "href" || key === "src") {
                const url = safeUrl(value);
                if (url !== null)
                    node.setAttribute(key, url);
            } else if (key === "value")
                node.value = String(value);
            else
                node.setAttribute(key, value === true ? "" : String(value));
        }
        return append(node, children);
    }

    function clear(node) {
        while (node.firstChild)
            node.removeChild(node.firstChild);
        return node;
    }

    function replace(node, ...children) {
        return append(clear(node), children);
    }

    /* A PatternFly button; variant: primary, secondary, danger, link, plain. */
    function button(label, variant, onclick, props) {
        return el("button", Object.assign({
            class: "pf-c-button pf-m-" + (variant || "secondary"),
            type: "button",
            onclick,
        }, props || {}), label);
    }

    /* A PatternFly inline alert: kind is danger, warning, success or info. */
    function alert(kind, title, detail, props) {
        return el("div", Object.assign({
            class: "pf-c-alert pf-m-inline pf-m-" + kind,
            role: kind === "danger" ? "alert" : "status",
        }, props || {}),
                  el("div", { class: "pf-c-alert__icon" },
                     el("span", { class: "twofa-alert-icon twofa-alert-icon-" + kind, "aria-hidden": "true" })),
                  el("p", { class: "pf-c-alert__title" },
                     el("span", { class: "pf-screen-reader" }, kind + " alert:"),
                     title),
                  detail ? el("div", { class: "pf-c-alert__description" }, el("p", {}, detail)) : null);
    }

    function card(title, props, ...body) {
        return el("article", Object.assign({ class: "pf-c-card" }, props || {}),
                  title ? el("div", { class: "pf-c-card__title" },
                             el("h2", { class: "pf-c-title pf-m-lg" }, title))
                      : null,
                  el("div", { class: "pf-c-card__body" }, body));
    }

    /* A description list from [term, description] pairs; a null description is left out. */
    function descriptions(pairs, props) {
        return el("dl", Object.assign({ class: "pf-c-description-list pf-m-horizontal pf-m-compact" }, props || {}),
                  pairs.filter(pair => pair[1] !== null && pair[1] !== undefined).map(([term, value, id]) =>
                      el("div", { class: "pf-c-description-list__group" },
                         el("dt", { class: "pf-c-description-list__term" },
                            el("span", { class: "pf-c-description-list__text" }, term)),
                         el("dd", { class: "pf-c-description-list__description" },
                            el("div", { class: "pf-c-description-list__text", id }, value)))));
    }

    /* A labelled text field, with helper text under it. */
    function field(id, label, props, helper) {
        const input = el("input", Object.assign({ class: "pf-c-form-control", id, type: "text" }, props || {}));
        return {
            input,
            group: el("div", { class: "pf-c-form__group" },
                      el("div", { class: "pf-c-form__group-label" },
                         el("label", { class: "pf-c-form__label", for: id },
                            el("span", { class: "pf-c-form__label-text" }, label))),
                      el("div", { class: "pf-c-form__group-control" }, input,
                         helper ? el("div", { class: "pf-c-form__helper-text" },
                                     el("div", { class: "pf-c-helper-text" },
                                        el("div", { class: "pf-c-helper-text__item" },
                                           el("span", { class: "pf-c-helper-text__item-text" }, helper))))
                             : null)),
        };
    }

    /* A label for an account's state, coloured as Cockpit colours states. */
    const STATE_LABELS = {
        enabled: ["Enabled", "green"],
        locked: ["Locked", "red"],
        incomplete: ["Incomplete", "orange"],
        disabled: ["Disabled", "grey"],
    };

    function stateLabel(state, props) {
        const [text, colour] = STATE_LABELS[state] || [String(state), "grey"];
        return el("span", Object.assign({ class: "pf-c-label pf-m-" + colour, dataset: { state } }, props || {}),
                  el("span", { class: "pf-c-label__content" }, text));
    }

    function when(seconds) {
        if (typeof seconds !== "number")
            return "never";
        return new Date(seconds * 1000).toLocaleString();
    }

    /* A key in groups of four, as people type it into an app by hand. */
    function grouped(key) {
        return String(key).replace(/(.{4})(?=.)/g, "$1 ");
    }

    window.twofaDom = {
        el, clear, replace, button, alert, card, descriptions, field, stateLabel,
        STATE_LABELS, when, grouped, safeUrl,
    };
}());
