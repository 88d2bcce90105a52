/* "All accounts": for administrators, through `twofactl` with Cockpit's administrative
 * access. Every account with its state, searchable, filtered and paged; per account
 * unlock, resync, new recovery codes, reset and disable; the policy in force for a
 * chosen login; and who must use two-step verification, written as the page's own
 * drop-in policy file after showing who would be Incomplete and whether an
 * administrator would be locked out. */
(function () {
    "use strict";

    const { el, replace, button, alert, card, descriptions, field, stateLabel, when, grouped, STATE_LABELS } = window.twofaDom;
    const { twofactl } = window.twofaCommands;

    const PAGE_SIZE = 50;
    const FILTERS = [["all", "All"]].concat(Object.entries(STATE_LABELS).map(([state, [label]]) => [state, label]));

    /* Users: "alice, bob  carol" → ["alice", "bob", "carol"]. Groups may have spaces
     * ("domain admins"), so they are separated by commas or lines only. A name that
     * begins with "-" is refused here: twofactl would read it as one of its options. */
    function names(text, what, separators) {
        const listed = text.split(separators).map(name => name.trim()).filter(Boolean);
        const option = listed.find(name => name.startsWith("-"));
        if (option !== undefined)
            throw new Error("Not a " + what + " name: " + option + " (a name cannot begin with \"-\")");
        return listed;
    }
    /* A button's click handler that runs `action` (a promise) once at a time: the button
     * stays disabled until it settles, so a second click cannot send the command twice. */
    function once(action) {
        return event => {
            const pressed = event.currentTarget;
            pressed.disabled = true;
            Promise.resolve()
                    .then(action)
                    .catch(() => null)
                    .then(() => { pressed.disabled = false });
        };
    }

    const userNames = text => names(text, "user", /[\s,]+/);
    const groupNames = text => names(text, "group", /[,\n]+/);

    class AdminView {
        constructor(root, me) {
            this.root = root;
            this.me = me;
            this.accounts = [];
            this.filter = "all";
            this.search = "";
            this.page = 0;
            this.alerts = el("div", { id: "admin-alerts", class: "pf-l-stack pf-m-gutter" });
            this.action = el("div", { id: "account-action" });
            this.tableBody = el("tbody", { id: "accounts-body" });
            this.count = el("span", { id: "accounts-count", class: "twofa-count" });
            replace(root, this.alerts, this.accountsCard(), this.requireCard(), this.explainCard());
        }

        say(kind, title, detail) {
            replace(this.alerts, alert(kind, title, detail, { id: "admin-alert" }));
        }

        refresh() {
            return Promise.all([this.loadAccounts(), this.loadRequired()]);
        }

        loadAccounts() {
            // Only the latest answer is shown: an earlier, slower one never overwrites it.
            const asked = this.asked = (this.asked || 0) + 1;
            return twofactl({ words: ["status"] })
                    .then(accounts => {
                        if (asked !== this.asked)
                            return;
                        this.accounts = accounts;
                        this.renderAccounts();
                    })
                    .catch(ex => this.say("danger", "The accounts could not be read", ex.message));
        }

        /* --- the accounts ---------------------------------------------------------------- */

        accountsCard() {
            const search = el("input", {
                class: "pf-c-form-control", type: "search", id: "accounts-search",
                placeholder: "Search by name", "aria-label": "Search by name",
            });
            search.addEventListener("input", () => {
                this.search = search.value.trim().toLowerCase();
                this.page = 0;
                this.renderAccounts();
            });
            const filter = el("select", { class: "pf-c-form-control", id: "accounts-filter", "aria-label": "State" },
                              FILTERS.map(([value, label]) => el("option", { value }, label)));
            filter.addEventListener("change", () => {
                this.filter = filter.value;
                this.page = 0;
                this.renderAccounts();
            });
            this.previous = button("Previous", "plain", () => { this.page -= 1; this.renderAccounts() }, { id: "accounts-previous", "aria-label": "Previous page" });
            this.next = button("Next", "plain", () => { this.page += 1; this.renderAccounts() }, { id: "accounts-next", "aria-label": "Next page" });
            return card("Accounts", { id: "accounts-card" },
                        el("div", { class: "pf-c-toolbar" },
                           el("div", { class: "pf-c-toolbar__content" },
                              el("div", { class: "pf-c-toolbar__content-section" },
                                 el("div", { class: "pf-c-toolbar__item" }, search),
                                 el("div", { class: "pf-c-toolbar__item" }, filter),
                                 el("div", { class: "pf-c-toolbar__item pf-m-pagination" }, this.count, this.previous, this.next)))),
                        this.action,
                        el("table", { class: "pf-c-table pf-m-compact pf-m-grid-md", id: "accounts", role: "grid" },
                           el("thead", {}, el("tr", {}, ["Name", "State", "Devices", "Last login", "Failures", ""].map(h => el("th", { scope: "col" }, h)))),
                           this.tableBody));
        }

        shown() {
            return this.accounts.filter(account =>
                (this.filter === "all" || account.state === this.filter) &&
                (!this.search || account.user.toLowerCase().includes(this.search)));
        }

        renderAccounts() {
            const shown = this.shown();
            const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
            this.page = Math.min(Math.max(this.page, 0), pages - 1);
            const first = this.page * PAGE_SIZE;
            const rows = shown.slice(first, first + PAGE_SIZE).map(account => this.row(account));
            if (!rows.length)
                rows.push(el("tr", {}, el("td", { colspan: "6", class: "twofa-empty" }, "No account matches.")));
            replace(this.tableBody, rows);
            replace(this.count, shown.length
                ? (first + 1) + "–" + Math.min(first + PAGE_SIZE, shown.length) + " of " + shown.length
                : "0 of " + this.accounts.length);
            this.previous.disabled = this.page === 0;
            this.next.disabled = this.page >= pages - 1;
        }

        row(account) {
            const user = account.user;
            const actions = el("td", { class: "twofa-row-actions" });
            if (user === this.me) {
                actions.append(el("span", { class: "twofa-muted" }, "Your own: see “Your account”"));
            } else {
                const act = (label, handler, variant) =>
                    button(label, variant || "link", handler, { dataset: { user, action: label.toLowerCase() } });
                if (account.locked || account.state === "locked")
                    actions.append(act("Unlock", () => this.unlock(user), "secondary"));
                if (account.enrollment === "active") {
                    actions.append(act("Resync", () => this.resync(user)),
                                   act("Recovery codes", () => this.recoveryCodes(user)),
                                   act("Disable", () => this.confirmThen(user, "Disable", "Switch two-step verification off for " + user + "? Their key, devices and recovery codes are deleted.", () => this.disable(user))));
                }
                if (account.enrollment !== "none")
                    actions.append(act("Reset", () => this.confirmThen(user, "Reset", "Give " + user + " a new key? Every device they have stops working until they set it up again.", () => this.reset(user))));
            }
            const devices = (account.devices || []).filter(device => device.state === "active").length;
            return el("tr", { dataset: { user } },
                      el("td", { class: "twofa-user" }, user),
                      el("td", {}, stateLabel(account.state),
                         account.renewal_pending || account.enrollment === "pending"
                             ? el("span", { class: "twofa-muted twofa-note" }, account.renewal_pending ? "new key pending" : "set-up pending")
                             : null),
                      el("td", {}, account.enrollment === "active" ? String(devices) : "–"),
                      el("td", {}, account.last_success ? when(account.last_success) + (account.last_host ? " from " + account.last_host : "") : "never"),
                      el("td", {}, String(account.failures || 0)),
                      actions);
        }

        panel(title, ...body) {
            replace(this.action, el("div", { class: "twofa-panel", id: "account-panel" },
                                    el("h3", { class: "pf-c-title pf-m-md" }, title),
                                    body,
                                    el("div", { class: "twofa-actions" },
                                       button("Close", "link", () => replace(this.action), { id: "account-panel-close" }))));
        }

        done(promise, success) {
            return promise
                    .then(result => {
                        this.say("success", success(result));
                        return this.loadAccounts().then(() => result);
                    })
                    .catch(ex => {
                        this.say("danger", ex.message);
                        throw ex;
                    });
        }

        confirmThen(user, verb, question, action) {
            this.panel(verb + " " + user,
                       el("p", { class: "twofa-text" }, question),
                       button(verb, "danger", once(action), { id: "account-confirm" }));
        }

        unlock(user) {
            replace(this.action);
            this.done(twofactl({ words: ["unlock"], names: [user] }), () => user + " is unlocked.").catch(() => null);
        }

        disable(user) {
            return this.done(twofactl({ words: ["disable"], names: [user] }), () => "Two-step verification is off for " + user + ".")
                    .then(() => replace(this.action));
        }

        reset(user) {
            return this.done(twofactl({ words: ["reset"], names: [user] }),
                             () => user + " has a new key: their old devices no longer work.")
                    .then(setup => this.panel("New key for " + user,
                                              el("p", { class: "twofa-text" },
                                                 "Give this to " + user + " in person, or let them set up again at their next login or on this page. " +
                                                 "It is active once a code from it confirms it."),
                                              el("div", { class: "twofa-qr" },
                                                 el("img", { src: setup.qr_image, alt: "QR code of " + user + "'s new key", width: "225", height: "225" })),
                                              el("div", { class: "twofa-key", id: "reset-key" }, grouped(setup.secret))));
        }

        recoveryCodes(user) {
            this.panel("New recovery codes for " + user,
                       el("p", { class: "twofa-text" }, "New codes replace all of " + user + "'s old ones; they are shown once, for you to hand over."),
                       button("Make new recovery codes", "primary", once(() =>
                           this.done(twofactl({ words: ["recovery-codes"], options: ["--regenerate"], names: [user] }),
                                     () => user + " has new recovery codes.")
                                   .then(done => this.panel("Recovery codes for " + user,
                                                            el("ol", { class: "twofa-recovery-codes", id: "admin-recovery-codes" },
                                                               done.recovery_codes.map(code => el("li", {}, el("code", {}, code))))))),
                              { id: "account-confirm" }));
        }

        resync(user) {
            const first = field("resync-code1", "A code from " + user + "'s app", { inputmode: "numeric", maxlength: "10" });
            const second = field("resync-code2", "The code after it", { inputmode: "numeric", maxlength: "10" });
            this.panel("Resync " + user,
                       el("p", { class: "twofa-text" }, "For a phone whose clock is off: two codes in a row from it."),
                       el("div", { class: "pf-c-form" }, first.group, second.group),
                       button("Resync", "primary", once(() =>
                           this.done(twofactl({ words: ["resync"], names: [user, "-", "-"] }, [first.input.value, second.input.value]),
                                     result => user + "'s device “" + result.device + "” is back in step.")
                                   .then(() => replace(this.action))),
                              { id: "account-confirm" }));
        }

        /* --- who must use it ------------------------------------------------------------- */

        requireCard() {
            this.requireUsers = field("require-users", "Users", { placeholder: "for example: alice bob" }, "Login names, separated by spaces or commas.");
            this.requireGroups = field("require-groups", "Groups", { placeholder: "for example: sudo, staff" }, "Separated by commas; every member, supplementary groups included.");
            for (const input of [this.requireUsers.input, this.requireGroups.input]) {
                input.addEventListener("input", () => {
                    input.dataset.edited = "yes";
                    // A preview is of what was typed then: changed, it no longer holds.
                    if (this.previewed)
                        this.clearPreview();
                });
            }
            this.requireResult = el("div", { id: "require-result", class: "pf-l-stack pf-m-gutter" });
            this.requireFile = el("p", { class: "twofa-muted", id: "require-file" });
            return card("Require two-step verification", { id: "require-card" },
                        el("p", { class: "twofa-text" },
                           "For these users and the members of these groups a code is required at every login. " +
                           "The page keeps them in its own policy file, which the main policy includes; rules written in the main policy come first."),
                        this.requireFile,
                        el("div", { class: "pf-c-form" }, this.requireUsers.group, this.requireGroups.group),
                        el("div", { class: "twofa-actions" },
                           button("Check", "secondary", () => this.previewRequired(), { id: "require-preview" })),
                        this.requireResult);
        }

        loadRequired() {
            return twofactl({ words: ["require", "show"] })
                    .then(shown => {
                        // What the administrator has begun typing is not overwritten.
                        for (const [input, listed] of [[this.requireUsers.input, shown.users],
                                                       [this.requireGroups.input, shown.groups]]) {
                            if (input.dataset.edited !== "yes")
                                input.value = listed.join(input === this.requireUsers.input ? " " : ", ");
                        }
                        this.requireShown = shown;
                        replace(this.requireFile, "Kept in " + shown.file +
                                (shown.included ? "." : ", which the main policy does not include yet."));
                    })
                    .catch(ex => {
                        this.requireShown = null;
                        replace(this.requireFile, alert("warning", "The page's policy file could not be read", ex.message));
                    });
        }

        /* The options for `require set`; throws on a name that cannot be given. */
        requireOptions() {
            const options = [];
            const users = userNames(this.requireUsers.input.value);
            const groups = groupNames(this.requireGroups.input.value);
            if (users.length)
                options.push("--users", ...users);
            if (groups.length)
                options.push("--groups", ...groups);
            return options;
        }

        clearPreview() {
            this.previewed = null;
            replace(this.requireResult);
        }

        previewRequired() {
            let options;
            try {
                options = this.requireOptions();
            } catch (ex) {
                this.clearPreview();
                replace(this.requireResult, alert("danger", "Not checked", ex.message, { id: "require-error" }));
                return;
            }
            this.previewed = null;
            replace(this.requireResult, el("div", { class: "twofa-muted" }, "Checking…"));
            twofactl({ words: ["require", "set"], options: options.concat(["--dry-run"]) })
                    .then(preview => this.showPreview(preview, options))
                    .catch(ex => replace(this.requireResult, alert("danger", "Not applied", ex.message, { id: "require-error" })));
        }

        /* Who the drop-in requires now and would no longer: the accounts the loaded
         * `require show` names that the preview does not. */
        noLongerRequired(preview) {
            if (!this.requireShown)
                return [];
            const users = new Set(preview.users || []);
            const groups = new Set(preview.groups || []);
            return this.requireShown.users.filter(user => !users.has(user)).map(user => "user " + user)
                    .concat(this.requireShown.groups.filter(group => !groups.has(group)).map(group => "group " + group));
        }

        showPreview(preview, options) {
            // Apply runs exactly what was previewed, whatever is typed afterwards.
            this.previewed = options;
            const parts = [];
            const required = preview.required || [];
            parts.push(el("p", { class: "twofa-text", id: "require-summary" },
                          required.length + " account(s) would need a code at every login."));
            const dropped = this.noLongerRequired(preview);
            if (dropped.length)
                parts.push(alert("info", "No longer required by this page: " + dropped.join(", "),
                                 "Rules in the main policy may still require them.", { id: "require-dropped" }));
            if (preview.incomplete.length)
                parts.push(alert("warning", preview.incomplete.length + " would be Incomplete: not set up yet",
                                 preview.incomplete.join(", ") + " — they need an app before they can log in.",
                                 { id: "require-incomplete" }));
            if (preview.lockout_risk)
                parts.push(alert("danger", "An administrator would be locked out", preview.lockout_risk, { id: "require-lockout" }));
            const force = el("input", { type: "checkbox", class: "pf-c-check__input", id: "require-force" });
            if (preview.lockout_risk)
                parts.push(el("div", { class: "pf-c-check" }, force,
                              el("label", { class: "pf-c-check__label", for: "require-force" }, "Apply anyway")));
            const apply = button("Apply and reload", "primary", () => {
                apply.disabled = true;
                this.applyRequired(force.checked);
            }, { id: "require-apply" });
            // Without the file as it is now, what Apply replaces is unknown.
            if (!this.requireShown)
                apply.disabled = true;
            parts.push(el("div", { class: "twofa-actions" }, apply));
            replace(this.requireResult, parts);
        }

        applyRequired(force) {
            const options = this.previewed;
            if (!options)
                return;
            this.previewed = null;
            twofactl({ words: ["require", "set"], options: options.concat(force ? ["--force"] : []) })
                    .then(done => {
                        replace(this.requireResult, alert("success", "The policy is reloaded",
                                                          (done.required || []).length + " account(s) need a code at every login.",
                                                          { id: "require-applied" }));
                        for (const input of [this.requireUsers.input, this.requireGroups.input])
                            delete input.dataset.edited;
                        return Promise.all([this.loadAccounts(), this.loadRequired()]);
                    })
                    .catch(ex => replace(this.requireResult, alert("danger", "Not applied", ex.message, { id: "require-error" })));
        }

        /* --- what decides one login ------------------------------------------------------ */

        explainCard() {
            const user = field("explain-user", "User", { placeholder: "alice" });
            const service = field("explain-service", "Service", { value: "sshd" }, "The PAM service: sshd, login, cockpit, sudo, …");
            const from = field("explain-from", "From", { placeholder: "192.0.2.7" }, "The address logged in from; empty for a local login.");
            const result = el("div", { id: "explain-result" });
            const run = button("Explain", "secondary", () => {
                const options = ["--service", service.input.value.trim() || "sshd"];
                if (from.input.value.trim())
                    options.push("--from", from.input.value.trim());
                twofactl({ words: ["policy", "explain"], options, names: [user.input.value.trim()] })
                        .then(data => replace(result, descriptions([
                            ["Decision", data.action, "explain-action"],
                            ["Decided by", data.rule === "default" ? "the default" : "rule " + data.rule + (data.line ? " (" + data.line + ")" : ""), "explain-rule"],
                            ["Codes by email", data.email_allowed ? "allowed" : "not allowed", "explain-email"],
                            ["State", data.state ? stateLabel(data.state) : "unknown", "explain-state"],
                            ["Note", data.known ? null : "no such account on this machine", "explain-note"],
                        ])))
                        .catch(ex => replace(result, alert("danger", ex.message, null, { id: "explain-error" })));
            }, { id: "explain-run" });
            return card("The policy for one login", { id: "explain-card" },
                        el("div", { class: "pf-c-form" }, user.group, service.group, from.group),
                        el("div", { class: "twofa-actions" }, run),
                        result);
        }
    }

    window.twofaAdmin = { AdminView };
}());
