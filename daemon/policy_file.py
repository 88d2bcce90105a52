"""YAML text to a validated Policy, or every error in it with its line and column.

This is the policy's schema: which keys a file may have and what each must hold.
The YAML is composed into nodes (which keep their positions) and walked by hand
(yaml_walk), so an error can say where it is and what was expected, unknown keys are
caught (a misspelt `gruops:` must not silently widen a rule), and nothing is applied
unless all of it is valid.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import yaml
from yaml.nodes import Node, ScalarNode

from pam_twofa import vocabulary as v
from pam_twofa.errors import INVALID_POLICY, TwofaError
from pam_twofa.protocol import (
    MAX_WINDOW,
    validate_group,
    validate_service,
    validate_user,
)

from . import policy_dropins as dropins
from .lockout import LockoutPolicy
from .policy import ACTIONS, EmailPolicy, Policy, Rule
from .totp import ALGORITHMS, TotpParams
from .yaml_walk import (
    MAX_NODES,
    Invalid,
    Loader,
    Problem,
    TooBig,
    Walker,
    brief,
    human,
    position,
    show,
)

MAX_POLICY_BYTES = v.MAX_POLICY_BYTES
MAX_RULE_NAME = 64  # rule names travel in every status line and audit event
MAX_SHOWN = 50  # problems listed; 50 of the longest still fit in a protocol message
# The keys of a policy file; a drop-in may hold only `rules`.
TOP_KEYS = (
    "issuer",
    "totp",
    "default",
    "rules",
    "include",
    "enrollment",
    "recovery_codes",
    "lockout",
    "email",
    "admins",
)
T = TypeVar("T")


class PolicyError(TwofaError):
    """A policy that cannot be used; `problems` lists every error found, in file order.

    A policy with drop-ins is several files: each problem keeps the file it is in, the
    main file's first, then the drop-ins' in the order they are read.
    """

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.located = [(source, problem) for problem in _in_order(problems)]
        self._settle(source)

    @classmethod
    def joined(cls, errors: list[PolicyError]) -> PolicyError:
        """One error holding every problem of `errors`, each still naming its file."""
        joined = cls.__new__(cls)
        joined.located = [pair for error in errors for pair in error.located]
        joined._settle(errors[0].source)
        return joined

    def _settle(self, source: str) -> None:
        self.source = source
        self.problems = [problem for _, problem in self.located]
        super().__init__(INVALID_POLICY, "\n".join(self.messages))

    @property
    def messages(self) -> list[str]:
        """Every problem, up to MAX_SHOWN: a reply carrying them must fit in one message."""
        shown = [problem.format(where) for where, problem in self.located[:MAX_SHOWN]]
        hidden = len(self.located) - len(shown)
        return shown + ([f"{self.source}: ... and {hidden} more"] if hidden else [])


def _in_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line, p.column))


def _rule(walker: Walker, node: Node, path: str, file: str | None) -> Rule:
    users = walker.name(validate_user, "user name")
    groups = walker.name(validate_group, "group name")
    services = walker.name(validate_service, "PAM service name")

    def listed(item: Callable[[Node, str], Any]) -> Callable[[Node, str], tuple[Any, ...]]:
        def convert(node: Node, path: str) -> tuple[Any, ...]:
            values = walker.sequence(node, path, item)
            if not values:
                # `groups: []` would match nobody and `not_from: []` exclude nothing:
                # either way the rule would not do what its key says.
                walker.problem(
                    node, path, "an empty list matches nothing; list a value or remove the key"
                )
                raise Invalid
            return values

        return convert

    fields = walker.mapping(
        node,
        path,
        {
            "name": walker.label(MAX_RULE_NAME),
            "users": listed(users),
            "groups": listed(groups),
            "services": listed(services),
            "from": listed(walker.network),
            "not_users": listed(users),
            "not_services": listed(services),
            "not_groups": listed(groups),
            "not_from": listed(walker.network),
            "action": walker.choice(ACTIONS),
            "email": walker.boolean,
        },
    )
    if "action" not in fields:
        walker.problem(node, path, f"a rule needs an action: {', '.join(ACTIONS)}")
        raise Invalid
    return Rule(
        # Unnamed, a rule is called where it is: a drop-in's own from the main file's.
        name=fields.get("name", f"{os.path.basename(file)}:{path}" if file else path),
        action=fields["action"],
        line=node.start_mark.line + 1,
        users=fields.get("users"),
        groups=fields.get("groups"),
        services=fields.get("services"),
        from_=fields.get("from"),
        not_users=fields.get("not_users"),
        not_services=fields.get("not_services"),
        not_groups=fields.get("not_groups"),
        not_from=fields.get("not_from"),
        email=fields.get("email"),
        file=file,
    )


def _rules(walker: Walker, node: Node, path: str, file: str | None = None) -> tuple[Rule, ...]:
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return ()
    rules = walker.sequence(node, path, lambda n, p: _rule(walker, n, p, file))
    seen: dict[str, int] = {}
    for rule in rules:
        if rule.name in seen:
            walker.problems.append(
                Problem(
                    rule.line,
                    1,
                    path,
                    f"two rules are named {rule.name!r} (lines {seen[rule.name]} and {rule.line})",
                )
            )
        seen[rule.name] = rule.line
    return rules


def _issuer(walker: Walker, node: Node, path: str) -> str:
    value = walker.string(node, path)
    if ":" in value or len(value) > 64 or not value.isprintable():
        walker.problem(node, path, "expected up to 64 printable characters without ':'")
        raise Invalid
    return value


def parse(text: str, source: str = "policy.yaml") -> Policy:
    """Validate `text` whole; return the Policy or raise PolicyError with every problem.

    The drop-ins its `include:` names are not read here (see with_dropins, load).
    """
    root = _compose(text, source)
    if root is None:
        return Policy(source=source)  # an empty file: every key takes its default
    return _walk(root, source, lambda walker, node: _policy(walker, node, source))


def parse_fragment(text: str, source: str) -> tuple[Rule, ...]:
    """A drop-in's rules; anything but `rules:` in it is an error naming the key."""
    root = _compose(text, source)
    if root is None:
        return ()

    def fragment(walker: Walker, node: Node) -> tuple[Rule, ...]:
        def elsewhere(key: str) -> Callable[[Node, str], Any]:
            def refuse(value: Node, path: str) -> None:
                walker.problem(
                    value, path, f"a drop-in holds only rules; put {key!r} in the policy file"
                )
                raise Invalid

            return refuse

        schema: dict[str, Callable[[Node, str], Any]] = {key: elsewhere(key) for key in TOP_KEYS}
        schema["rules"] = lambda n, p: _rules(walker, n, p, source)
        return tuple(walker.mapping(node, "", schema).get("rules", ()))

    return _walk(root, source, fragment)


def _compose(text: str, source: str) -> Node | None:
    """The YAML's node tree (None for a file with nothing in it), or its one YAML error."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_POLICY_BYTES:
        raise PolicyError(source, [Problem(1, 1, "", f"larger than {MAX_POLICY_BYTES} bytes")])
    try:
        root: Node | None = yaml.compose(text, Loader=Loader)
        return root
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = brief(" ".join(filter(None, (exc.context, exc.problem))))
        raise PolicyError(
            source, [Problem(line, column, "", f"not valid YAML: {problem}")]
        ) from None
    except yaml.reader.ReaderError as exc:
        line, column = position(text, exc.position)
        what = (
            f"the character U+{exc.character:04X}"
            if exc.encoding == "unicode"
            else f"the byte 0x{exc.character:02x}"
        )
        raise PolicyError(
            source, [Problem(line, column, "", f"not valid YAML: {what} is not allowed")]
        ) from None
    except yaml.YAMLError as exc:
        message = brief(str(exc).splitlines()[0])
        raise PolicyError(source, [Problem(1, 1, "", f"not valid YAML: {message}")]) from None


def _walk(root: Node, source: str, schema: Callable[[Walker, Node], T]) -> T:
    """`schema` applied to the tree; PolicyError with every problem it recorded."""
    walker = Walker()
    result: T | None
    try:
        result = schema(walker, root)
    except Invalid:
        result = None
    except TooBig:
        walker.problems.append(Problem(1, 1, "", f"more than {MAX_NODES} values"))
        result = None
    except RecursionError:
        walker.problems.append(Problem(1, 1, "", "nested too deeply"))
        result = None
    if walker.problems or result is None:
        raise PolicyError(source, walker.problems or [Problem(1, 1, "", "not a policy")])
    return result


def _include(walker: Walker, node: Node, path: str) -> tuple[str, ...]:
    def pattern(item: Node, where: str) -> str:
        value = walker.string(item, where)
        problem = dropins.pattern_problem(value)
        if problem:
            walker.problem(item, where, f"{show(value)}: {problem}")
            raise Invalid
        return value

    return walker.sequence(node, path, pattern)


def _policy(walker: Walker, root: Node, source: str) -> Policy:
    defaults = Policy()
    group_name = walker.name(validate_group, "group name")

    def group_list(node: Node, path: str) -> tuple[str, ...]:
        return walker.sequence(node, path, group_name)

    top = walker.mapping(
        root,
        "",
        {
            "issuer": lambda n, p: _issuer(walker, n, p),
            "totp": lambda n, p: _totp(walker, n, p),
            "default": walker.choice(ACTIONS),
            "rules": lambda n, p: _rules(walker, n, p),
            "include": lambda n, p: _include(walker, n, p),
            "enrollment": lambda n, p: walker.mapping(n, p, {"at_login": walker.boolean}),
            "recovery_codes": lambda n, p: walker.mapping(n, p, {"count": walker.integer(4, 20)}),
            "lockout": lambda n, p: _lockout(walker, n, p),
            "email": lambda n, p: _email(walker, n, p),
            "admins": lambda n, p: walker.mapping(
                n,
                p,
                {
                    "groups": lambda gn, gp: walker.sequence(
                        gn, gp, walker.name(validate_group, "group name")
                    )
                },
            ),
        },
    )
    totp_fields = top.get("totp", {})
    return Policy(
        source=source,
        issuer=top.get("issuer", defaults.issuer),
        totp=TotpParams(
            algorithm=totp_fields.get("algorithm", defaults.totp.algorithm),
            digits=totp_fields.get("digits", defaults.totp.digits),
            period=totp_fields.get("period", defaults.totp.period),
        ),
        window=totp_fields.get("window", defaults.window),
        default=top.get("default", defaults.default),
        rules=top.get("rules", ()),
        enrollment_at_login=top.get("enrollment", {}).get("at_login", defaults.enrollment_at_login),
        recovery_codes=top.get("recovery_codes", {}).get("count", defaults.recovery_codes),
        lockout=top.get("lockout", defaults.lockout),
        admin_groups=frozenset(top.get("admins", {}).get("groups", defaults.admin_groups)),
        email=top.get("email", defaults.email),
        includes=top.get("include", ()),
    )


def _totp(walker: Walker, node: Node, path: str) -> dict[str, Any]:
    return walker.mapping(
        node,
        path,
        {
            "algorithm": walker.choice(tuple(ALGORITHMS)),
            "digits": walker.integer(v.MIN_DIGITS, v.MAX_DIGITS),
            "period": walker.duration(v.MIN_PERIOD, v.MAX_PERIOD),
            "window": walker.integer(0, MAX_WINDOW),
        },
    )


def _lockout(walker: Walker, node: Node, path: str) -> LockoutPolicy:
    defaults = LockoutPolicy()
    fields = walker.mapping(
        node,
        path,
        {
            "after": walker.integer(1, 1000),
            "first": walker.duration(1, 86400),
            "max": walker.duration(1, 7 * 86400),
            "hard_after": walker.integer(1, 1_000_000),
            "forgive_within": walker.duration(0, 86400),
        },
    )
    after = fields.get("after", defaults.after)
    hard_after = fields.get("hard_after", defaults.hard_after)
    first = fields.get("first", defaults.first)
    maximum = fields.get("max", defaults.maximum)
    if hard_after < after:
        walker.problem(node, path, f"hard_after ({hard_after}) must not be below after ({after})")
        raise Invalid
    if maximum < first:
        walker.problem(
            node,
            path,
            f"max ({human(int(maximum))}) must not be below first ({human(int(first))})",
        )
        raise Invalid
    return LockoutPolicy(
        after=after,
        first=float(first),
        maximum=float(maximum),
        hard_after=hard_after,
        forgive_within=float(fields.get("forgive_within", defaults.forgive_within)),
    )


def _email(walker: Walker, node: Node, path: str) -> EmailPolicy:
    defaults = EmailPolicy()
    fields = walker.mapping(
        node,
        path,
        {
            "allowed": walker.boolean,
            "per_hour": walker.integer(1, 20),
            "per_day": walker.integer(1, 100),
            "valid_for": walker.duration(60, 3600),
        },
    )
    per_hour = fields.get("per_hour", defaults.per_hour)
    per_day = fields.get("per_day", defaults.per_day)
    if per_day < per_hour:
        walker.problem(node, path, f"per_day ({per_day}) must not be below per_hour ({per_hour})")
        raise Invalid
    return EmailPolicy(
        allowed=fields.get("allowed", defaults.allowed),
        per_hour=per_hour,
        per_day=per_day,
        valid_for=float(fields.get("valid_for", defaults.valid_for)),
    )


def load(path: str, replace: Mapping[str, str] | None = None) -> Policy:
    """Read and validate a policy file and its drop-ins; PolicyError for their content,
    OSError for the main file.  `replace`: drop-ins (relative paths) to read as the text
    given instead of from disk, to see a policy as it would be."""
    with open(path, "rb") as policy_file:
        data = policy_file.read(MAX_POLICY_BYTES + 1)
    return with_dropins(parse(_decode(data, path), path), os.path.dirname(path), replace)


def with_dropins(
    policy: Policy, base: str | None, replace: Mapping[str, str] | None = None
) -> Policy:
    """`policy` with the rules of the drop-ins its `include:` names appended, after its
    own (so the hand-written ones win: the first rule that matches decides).

    `base` is the directory the patterns are relative to; None reads no drop-in.  Every
    drop-in is read and checked before any error is raised, so all of them are listed;
    rule names are unique across the files.
    """
    if not policy.includes or base is None:
        return policy
    replace = dict(replace or {})
    own = os.path.basename(policy.source)
    names = dropins.expand(policy.includes, base, replace, own)
    if len(names) > dropins.MAX_DROPINS:
        problem = Problem(1, 1, "include", f"{len(names)} files, more than {dropins.MAX_DROPINS}")
        raise PolicyError(policy.source, [problem])
    errors: list[PolicyError] = []
    rules = list(policy.rules)
    for name in names:
        path = os.path.join(base, name)
        try:
            text = _given_dropin(path, replace[name]) if name in replace else _read_dropin(path)
            rules += parse_fragment(text, path)
        except PolicyError as exc:
            errors.append(exc)
    duplicates = _duplicates(rules, policy.source)
    if errors or duplicates:
        raise PolicyError.joined(errors + duplicates)
    return dataclasses.replace(policy, rules=tuple(rules))


def dropin_included(policy: Policy, name: str) -> bool:
    """Whether the policy's `include:` names the drop-in `name` (relative to its file)."""
    return any(dropins.matches(pattern, name) for pattern in policy.includes)


def _given_dropin(path: str, text: str) -> str:
    try:
        dropins.check_directory(path)
    except dropins.Untrusted as exc:
        raise PolicyError(path, [Problem(1, 1, "", f"would not be read: {exc}")]) from None
    return text


def _read_dropin(path: str) -> str:
    try:
        data = dropins.read_trusted(path, MAX_POLICY_BYTES)
    except dropins.Untrusted as exc:
        raise PolicyError(path, [Problem(1, 1, "", f"not read: {exc}")]) from None
    except OSError as exc:
        raise PolicyError(path, [Problem(1, 1, "", f"cannot be read: {exc.strerror}")]) from None
    return _decode(data, path)


def _duplicates(rules: list[Rule], source: str) -> list[PolicyError]:
    """A rule whose name an earlier file already gave (one file's own are found by
    _rules, with the lines of both)."""
    first: dict[str, Rule] = {}
    errors = []
    for rule in rules:
        earlier = first.setdefault(rule.name, rule)
        if earlier is not rule and earlier.file != rule.file:
            where = f"{earlier.file or source}:{earlier.line}"
            message = f"a rule named {rule.name!r} is already in {where}; names must be unique"
            errors.append(
                PolicyError(rule.file or source, [Problem(rule.line, 1, "rules", message)])
            )
    return errors


def _decode(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PolicyError(path, [Problem(line, 1, "", "not valid UTF-8")]) from None
