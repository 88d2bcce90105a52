/* The page's only way to the daemon: the project's own commands with --json, through
 * cockpit.spawn. `twofa` runs as the person logged in, so the daemon sees their uid and
 * lets them act on their own account only; `twofactl` runs with Cockpit's
 * administrative access (superuser "require") or not at all.
 *
 * Codes never go on the command line, where every local user could read them in /proc:
 * each is given as "-" and written to the command's standard input, one line each. */
(function () {
    "use strict";

    class CommandError extends Error {
        constructor(message, problem) {
            super(message);
            this.problem = problem || null;
        }
    }

    /* What a failed command said, as it said it: its standard error (the commands print
     * one line, "twofa: what went wrong [code]"), else Cockpit's reason. */
    function failure(program, ex) {
        const said = ex && typeof ex.message === "string" ? ex.message.trim() : "";
        if (ex && ex.problem === "not-found")
            return new CommandError(program + " is not installed on this machine", ex.problem);
        if (ex && ex.problem === "access-denied")
            return new CommandError("Administrative access is needed for " + program, ex.problem);
        return new CommandError(said || (ex && ex.problem) || program + " failed", ex && ex.problem);
    }

    /* Run `program WORDS... --json OPTIONS... -- NAMES...` (after "--" a name that
     * begins with "-" stays a name), writing `codes` (one per line) to its standard
     * input; resolves with the parsed JSON, rejects with a CommandError. */
    function run(program, command, codes, superuser) {
        const names = command.names || [];
        const argv = [program].concat(command.words, ["--json"], command.options || [],
                                      names.length ? ["--"].concat(names) : []);
        const options = { err: "message" };
        if (superuser)
            options.superuser = "require";
        return new Promise((resolve, reject) => {
            const process = cockpit.spawn(argv, options);
            process
                    .then(output => {
                        try {
                            resolve(JSON.parse(output));
                        } catch (ex) {
                            reject(new CommandError(program + " printed something that is not JSON"));
                        }
                    })
                    .catch(ex => reject(failure(program, ex)));
            process.input((codes || []).map(code => String(code).trim() + "\n").join(""));
        });
    }

    window.twofaCommands = {
        CommandError,
        /* The person's own account. */
        twofa: (command, codes) => run("twofa", command, codes, false),
        /* Any account, as an administrator. */
        twofactl: (command, codes) => run("twofactl", command, codes, true),
    };
}());
