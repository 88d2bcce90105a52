/* The page: "Your account" for everyone; "All accounts" only while Cockpit has
 * administrative access (its superuser), which is also what lets `twofactl` run.
 * Hiding the tab is for the person's sake; the daemon's own checks are what keep a
 * person without that access away from other accounts. */
(function () {
    "use strict";

    const { PersonView } = window.twofaPerson;
    const { AdminView } = window.twofaAdmin;

    function selectTab(name) {
        for (const tab of document.querySelectorAll("#tabs .pf-c-tabs__item")) {
            const current = tab.id === "tab-" + name;
            tab.classList.toggle("pf-m-current", current);
            tab.querySelector("button").setAttribute("aria-selected", String(current));
        }
        document.getElementById("mine").hidden = name !== "mine";
        document.getElementById("admin").hidden = name !== "admin";
    }

    function start(me) {
        const person = new PersonView(document.getElementById("mine"));
        person.refresh();

        let admin = null;
        const permission = cockpit.permission({ admin: true });
        function adminChanged() {
            const allowed = permission.allowed === true;
            document.getElementById("tabs").hidden = !allowed;
            if (!allowed) {
                selectTab("mine");
                admin = null;
                document.getElementById("admin").replaceChildren();
                return;
            }
            if (admin === null) {
                admin = new AdminView(document.getElementById("admin"), me);
                admin.refresh();
            }
        }
        permission.addEventListener("changed", adminChanged);
        adminChanged();

        for (const button of document.querySelectorAll("#tabs button[data-tab]")) {
            button.addEventListener("click", () => {
                selectTab(button.dataset.tab);
                if (button.dataset.tab === "mine")
                    person.revisit();
                else if (admin)
                    admin.refresh();
            });
        }
    }

    document.addEventListener("DOMContentLoaded", () => {
        cockpit.user().then(user => start(user.name));
        document.body.hidden = false;
    });
}());
