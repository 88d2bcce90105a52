/* "Your account": the person logged in, through `twofa` as themselves. Set-up with a
 * QR code, the key and the link, confirmed with a code; recovery codes shown once;
 * devices; the address for codes by email; switching off where the policy allows.
 * Whatever could weaken the account asks for a current code first, as the commands do. */
(function () {
    "use strict";

    const { el, replace, button, alert, card, descriptions, field, stateLabel, when, grouped } = window.twofaDom;
    const { twofa } = window.twofaCommands;

    const DEFAULT_DEVICE = "phone";

    /* One inline "give a code" form at a time, in the card that asked for it. */
    let openCodeForm = null;

    function closeCodeForm() {
        if (openCodeForm && openCodeForm.parentNode)
            openCodeForm.parentNode.removeChild(openCodeForm);
        openCodeForm = null;
    }

    /* Ask for a code in `slot`; `action(code)` is a promise: on success the form goes,
     * on failure what the command said shows under the field and the form stays. */
    function askCode(slot, question, submitLabel, action, options) {
        closeCodeForm();
        const opts = options || {};
        const code = field("code-input", question, {
            autocomplete: "one-time-code", inputmode: opts.anyText ? "text" : "numeric",
            spellcheck: "false", maxlength: "64",
        }, opts.helper || "A code from your authenticator app, or one of your recovery codes.");
        const problem = el("div", { class: "twofa-problem" });
        const submit = button(submitLabel, opts.danger ? "danger" : "primary", null, { id: "code-submit", type: "submit" });
        const form = el("form", { class: "pf-c-form twofa-code-form", id: "code-form", novalidate: true },
                        code.group, problem,
                        el("div", { class: "pf-c-form__group pf-m-action" },
                           el("div", { class: "pf-c-form__actions" },
                              submit, button("Cancel", "link", closeCodeForm, { id: "code-cancel" }))));
        form.addEventListener("submit", event => {
            event.preventDefault();
            const given = code.input.value.trim();
            if (!given) {
                replace(problem, alert("danger", "Type a code first."));
                return;
            }
            submit.disabled = true;
            action(given)
                    .then(closeCodeForm)
                    .catch(ex => {
                        replace(problem, alert("danger", ex.message, null, { id: "code-error" }));
                        code.input.value = "";
                        submit.disabled = false;
                    });
        });
        replace(slot, form);
        openCodeForm = form;
        code.input.focus();
    }

    class PersonView {
        constructor(root) {
            this.root = root;
            this.alerts = el("div", { id: "my-alerts", class: "pf-l-stack pf-m-gutter" });
            this.body = el("div", { class: "pf-l-stack pf-m-gutter" });
            replace(root, this.alerts, this.body);
            this.status = null;
            // A set-up's key or new recovery codes on screen: shown once, so nothing
            // but the person's own Cancel or "I have saved them" takes them away.
            this.oneTime = false;
        }

        /* Coming back to the tab: fresh, unless what is shown would be lost. */
        revisit() {
            if (!this.oneTime)
                this.refresh();
        }

        say(kind, title, detail) {
            replace(this.alerts, alert(kind, title, detail, { id: "my-alert" }));
        }

        refresh() {
            closeCodeForm();
            this.oneTime = false;
            return twofa({ words: ["status"] })
                    .then(status => {
                        this.status = status;
                        this.render();
                    })
                    .catch(ex => {
                        replace(this.body);
                        this.say("danger", "Your account's state could not be read", ex.message);
                    });
        }

        render() {
            const status = this.status;
            const parts = [this.statusCard(status)];
            if (status.enrollment === "active") {
                parts.push(this.devicesCard(status), this.emailCard(status),
                           this.recoveryCard(status), this.disableCard(status));
            } else {
                parts.push(this.startCard(status));
            }
            replace(this.body, parts);
        }

        statusCard(status) {
            const required = status.required
                ? "Yes, by the policy" + (status.rule && status.rule !== "default" ? " (rule " + status.rule + ")" : "")
                : "No";
            const last = status.last_success
                ? when(status.last_success) + (status.last_host ? " from " + status.last_host : "")
                : null;
            const active = (status.devices || []).filter(device => device.state === "active").length;
            return card("Status", { id: "my-status-card" },
                        descriptions([
                            ["User", status.user, "my-user"],
                            ["State", stateLabel(status.state, { id: "my-state" })],
                            ["Required", required, "my-required"],
                            ["Devices", status.enrollment === "active" ? String(active) : null, "my-devices"],
                            ["Recovery codes left", status.enrollment === "active" ? String(status.recovery_codes_left) : null, "my-recovery-left"],
                            ["Codes by email", status.enrollment === "active" ? (status.email || "no address") : null, "my-email"],
                            ["Last login with a code", last, "my-last-login"],
                            ["Locked until", status.locked && status.retry_after ? when(status.retry_after) : null, "my-locked"],
                        ]));
        }

        /* Not set up (or a set-up left unconfirmed): name the first device and begin. */
        startCard(status) {
            const name = field("setup-device", "Name of the device", { value: DEFAULT_DEVICE, maxlength: "32" },
                               "The app on this device shows a new code every 30 seconds.");
            const intro = status.enrollment === "pending"
                ? "A set-up was started but not confirmed with a code. Start again for a new QR code."
                : status.required
                    ? "Your logins need a code, and you have no app set up yet."
                    : "Add a second step to your logins: a code from an authenticator app on your phone.";
            const start = button("Set up two-step verification", "primary", () => {
                start.disabled = true;
                twofa({ words: ["enroll"], options: ["--device", name.input.value.trim() || DEFAULT_DEVICE] })
                        .then(setup => this.showSetup(setup, true))
                        .catch(ex => {
                            start.disabled = false;
                            this.say("danger", "Set-up could not start", ex.message);
                        });
            }, { id: "setup-start" });
            return card("Set up", { id: "setup-start-card" },
                        el("p", { class: "twofa-text" }, intro),
                        el("div", { class: "pf-c-form" }, name.group),
                        el("div", { class: "twofa-actions" }, start));
        }

        /* The key of a new device: QR code, key, link; then a code from it confirms. */
        showSetup(setup, first) {
            closeCodeForm();
            this.oneTime = true;
            const code = field("setup-code", "Code the app shows", {
                autocomplete: "one-time-code", inputmode: "numeric", maxlength: "10", spellcheck: "false",
            });
            const problem = el("div", { class: "twofa-problem" });
            const confirm = button("Confirm", "primary", null, { id: "setup-confirm", type: "submit" });
            const form = el("form", { class: "pf-c-form", novalidate: true }, code.group, problem,
                            el("div", { class: "pf-c-form__actions" }, confirm,
                               button("Cancel", "link", () => this.refresh(), { id: "setup-cancel" })));
            form.addEventListener("submit", event => {
                event.preventDefault();
                confirm.disabled = true;
                twofa({ words: ["confirm"], options: ["--device", setup.device], names: ["-"] }, [code.input.value])
                        .then(done => {
                            if (done.recovery_codes)
                                this.showRecoveryCodes(done.recovery_codes, "Two-step verification is on");
                            else {
                                this.say("success", "“" + setup.device + "” is set up: its codes work from now on.");
                                this.refresh();
                            }
                        })
                        .catch(ex => {
                            confirm.disabled = false;
                            code.input.value = "";
                            replace(problem, alert("danger", ex.message, null, { id: "setup-error" }));
                        });
            });
            const link = el("a", { href: setup.uri, id: "setup-link", class: "twofa-link" }, "Open in an authenticator app on this device");
            replace(this.alerts);
            replace(this.body, card(first ? "Set up your authenticator app" : "Set up “" + setup.device + "”", { id: "setup" },
                                    el("ol", { class: "twofa-steps" },
                                       el("li", {}, el("p", {}, "Scan this QR code with the app (Google Authenticator, FreeOTP, Aegis, 1Password, …):"),
                                          el("div", { class: "twofa-qr" },
                                             el("img", { id: "setup-qr", src: setup.qr_image, alt: "QR code of the key for " + setup.device, width: "225", height: "225" }))),
                                       el("li", {}, el("p", {}, "Or type the key into the app by hand (time-based, " + (setup.digits || 6) + " digits):"),
                                          el("div", { class: "twofa-key", id: "setup-key" }, grouped(setup.secret)),
                                          link),
                                       el("li", {}, el("p", {}, "Type the code the app now shows for “" + setup.device + "”:"), form))));
            code.input.focus();
        }

        /* Shown once: the codes, a .txt to keep, a page to print. */
        showRecoveryCodes(codes, title) {
            const user = this.status ? this.status.user : cockpit.user().name;
            const text = ["Recovery codes for " + user + " on " + window.location.hostname,
                          "made " + new Date().toLocaleString(),
                          "Each works once, in place of a code from your app. Keep them somewhere safe.",
                          ""].concat(codes).join("\n") + "\n";
            const url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
            const download = el("a", {
                class: "pf-c-button pf-m-secondary", id: "recovery-download", href: url,
                download: "recovery-codes-" + user + ".txt",
            }, "Download (.txt)");
            closeCodeForm();
            this.oneTime = true;
            replace(this.alerts);
            replace(this.body, card(title, { id: "recovery" },
                                    alert("warning", "Save these recovery codes now: they are shown only once.",
                                          "If your phone is lost, each one lets you log in once instead of a code."),
                                    el("ol", { class: "twofa-recovery-codes", id: "recovery-codes" },
                                       codes.map(one => el("li", {}, el("code", {}, one)))),
                                    el("div", { class: "twofa-actions twofa-no-print" },
                                       download,
                                       button("Print", "secondary", () => window.print(), { id: "recovery-print" }),
                                       button("I have saved them", "primary", () => {
                                           URL.revokeObjectURL(url);
                                           this.refresh();
                                       }, { id: "recovery-done" }))));
        }

        devicesCard(status) {
            const slot = el("div", { class: "twofa-slot" });
            const rows = (status.devices || []).map(device => {
                const actions = el("td", { class: "twofa-row-actions" });
                const rename = button("Rename", "link", () => this.renameForm(slot, device.name), { dataset: { device: device.name, action: "rename" } });
                const remove = button("Remove", "link", () => askCode(slot, "Code to remove “" + device.name + "”", "Remove", code =>
                    twofa({ words: ["device", "remove"], options: ["--code", "-"], names: [device.name] }, [code])
                            .then(() => {
                                this.say("success", "“" + device.name + "” is removed: its codes no longer work.");
                                return this.refresh();
                            }), { danger: true }), { dataset: { device: device.name, action: "remove" } });
                actions.append(rename, status.devices.length > 1 ? remove : null);
                return el("tr", { dataset: { device: device.name } },
                          el("td", {}, device.name),
                          el("td", {}, device.state === "active" ? "Active" : "Waiting for its first code"),
                          el("td", {}, when(device.added_at)),
                          el("td", {}, when(device.last_used)),
                          actions);
            });
            const name = field("device-name", "New device's name", { maxlength: "32", placeholder: "tablet" });
            const add = button("Add a device", "secondary", () => {
                const wanted = name.input.value.trim();
                if (!wanted) {
                    this.say("danger", "Give the new device a name first.");
                    return;
                }
                askCode(slot, "A current code, to add “" + wanted + "”", "Add", code =>
                    twofa({ words: ["device", "add"], options: ["--code", "-"], names: [wanted] }, [code])
                            .then(setup => this.showSetup(setup, false)));
            }, { id: "device-add" });
            return card("Devices", { id: "devices-card" },
                        el("table", { class: "pf-c-table pf-m-compact pf-m-grid-md", id: "devices", role: "grid" },
                           el("thead", {}, el("tr", {}, ["Name", "State", "Added", "Last used", ""].map(h => el("th", {}, h)))),
                           el("tbody", {}, rows)),
                        el("p", { class: "twofa-text" },
                           "Each device has its own key: a lost one is removed without touching the others. At most " +
                           "five."),
                        el("div", { class: "twofa-inline-form" }, name.group, add),
                        slot);
        }

        renameForm(slot, old) {
            closeCodeForm();
            const name = field("rename-input", "New name for “" + old + "”", { value: old, maxlength: "32" });
            const form = el("form", { class: "pf-c-form", novalidate: true }, name.group,
                            el("div", { class: "pf-c-form__actions" },
                               button("Rename", "primary", null, { type: "submit", id: "rename-submit" }),
                               button("Cancel", "link", closeCodeForm)));
            form.addEventListener("submit", event => {
                event.preventDefault();
                twofa({ words: ["device", "rename"], names: [old, name.input.value.trim()] })
                        .then(() => this.refresh())
                        .catch(ex => this.say("danger", "The device was not renamed", ex.message));
            });
            replace(slot, form);
            openCodeForm = form;
        }

        emailCard(status) {
            const slot = el("div", { class: "twofa-slot" });
            const parts = [el("p", { class: "twofa-text" },
                              "If your phone is not at hand, a code can be mailed to this address where the policy " +
                              "allows it. Email is weaker than an app: anyone who can read your mail can use it.")];
            parts.push(descriptions([["Address", status.email || "none", "email-current"],
                                     ["Waiting for its code", status.email_pending || null, "email-pending"]]));
            if (status.email_pending) {
                const code = field("email-code", "Code mailed to " + status.email_pending, { inputmode: "numeric", maxlength: "12" });
                parts.push(el("div", { class: "twofa-inline-form" }, code.group,
                              button("Confirm the address", "primary", () =>
                                  twofa({ words: ["email", "confirm"], names: ["-"] }, [code.input.value])
                                          .then(() => {
                                              this.say("success", "Codes by email now go to " + status.email_pending + ".");
                                              return this.refresh();
                                          })
                                          .catch(ex => this.say("danger", "The address was not confirmed", ex.message)),
                              { id: "email-confirm" })));
            }
            const address = field("email-address", "New address", { type: "email", maxlength: "254", placeholder: "name@example.org" });
            parts.push(el("div", { class: "twofa-inline-form" }, address.group,
                          button("Send a confirmation code", "secondary", () => {
                              const wanted = address.input.value.trim();
                              if (!wanted) {
                                  this.say("danger", "Type the address first.");
                                  return;
                              }
                              askCode(slot, "A current code, to set the address", "Send", code =>
                                  twofa({ words: ["email", "set"], options: ["--code", "-"], names: [wanted] }, [code])
                                          .then(() => {
                                              this.say("info", "A code is on its way to " + wanted + ".", "Type it here to make the address yours.");
                                              return this.refresh();
                                          }));
                          }, { id: "email-set" })));
            if (status.email)
                parts.push(button("Remove the address", "link", () =>
                    twofa({ words: ["email", "remove"] })
                            .then(() => this.refresh())
                            .catch(ex => this.say("danger", "The address was not removed", ex.message)), { id: "email-remove" }));
            parts.push(slot);
            return card("Codes by email", { id: "email-card" }, parts);
        }

        recoveryCard(status) {
            const slot = el("div", { class: "twofa-slot" });
            return card("Recovery codes", { id: "recovery-card" },
                        el("p", { class: "twofa-text" },
                           status.recovery_codes_left + " left. New ones replace all the old ones."),
                        button("Make new recovery codes", "secondary", () =>
                            askCode(slot, "A current code, for new recovery codes", "Make new codes", code =>
                                twofa({ words: ["recovery-codes"], options: ["--regenerate", "--code", "-"] }, [code])
                                        .then(done => this.showRecoveryCodes(done.recovery_codes, "New recovery codes"))),
                        { id: "recovery-regenerate" }),
                        slot);
        }

        disableCard(status) {
            const slot = el("div", { class: "twofa-slot" });
            const off = button("Switch two-step verification off", "danger", () =>
                askCode(slot, "A current code, to switch it off", "Switch off", code =>
                    twofa({ words: ["disable"], options: ["--code", "-"] }, [code])
                            .then(() => {
                                this.say("success", "Two-step verification is off for " + status.user + ".");
                                return this.refresh();
                            }), { danger: true }), { id: "disable", disabled: status.required });
            return card("Switch off", { id: "disable-card" },
                        el("p", { class: "twofa-text" }, status.required
                            ? "The policy requires a code for your logins, so it cannot be switched off here."
                            : "Your key, every device and the recovery codes are deleted."),
                        off, slot);
        }
    }

    window.twofaPerson = { PersonView };
}());
