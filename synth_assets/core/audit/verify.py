"""Verifying: one walk over the events (links, MACs, the legacy prefix), the head, and the
anchors against the log; every break named."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from synth_assets.core.pg import connect, redact

from .anchors import Anchor, read_anchor
from .errors import AuditError, AuditKeyUnavailable
from .events import GENESIS_HASH, AuditEvent, _canonical, event_hash, event_mac
from .keys import _KNOWN_KEYS, REFRESH_ANCHOR, AuditKey, AuditSigner, bound_signer
from .log import _has_key_column, _has_schema, _rows, database_identity


@dataclass
class VerifyResult:
    """Outcome of :func:`verify_chain`: events checked, the head, every break found, and notes
    (legacy events, anchors checked) that are not breaks."""

    events: int
    head_hash: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    head_seq: int = 0
    key_ids: list[str] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _seqs(seqs: list[int]) -> str:
    """``event 3`` / ``events 3..5`` / ``events 1, 4..6`` (at most ten ranges named)."""
    ranges: list[list[int]] = []
    for s in sorted(seqs):
        if ranges and s == ranges[-1][1] + 1:
            ranges[-1][1] = s
        else:
            ranges.append([s, s])
    parts = [f"{a}" if a == b else f"{a}..{b}" for a, b in ranges[:10]]
    more = f" and {len(ranges) - 10} more range(s)" if len(ranges) > 10 else ""
    noun = "event" if len(seqs) == 1 else "events"
    return f"{noun} {', '.join(parts)}{more}"


class _Keyring:
    """The key an event names: from the signer's backend, or (no signer given) any audit key this
    process loaded. Remembers why a key is unavailable so each reason is reported once."""

    def __init__(self, signer: AuditSigner | None, process_keys: bool):
        self.signer = signer
        self.process_keys = process_keys
        self.missing: dict[str, str] = {}

    def get(self, key_id: str) -> AuditKey | None:
        if key_id in self.missing:
            return None
        if self.process_keys and key_id in _KNOWN_KEYS:
            return _KNOWN_KEYS[key_id]
        if self.signer is None:
            self.missing[key_id] = (
                "no audit key is loaded in this process; verify with `synth-assets audit verify` "
                "(it reads the configured secrets backend)"
            )
            return None
        try:
            return self.signer.key_for(key_id)
        except AuditKeyUnavailable as exc:
            self.missing[key_id] = str(exc)
            return None


@dataclass
class _Walk:
    """One pass over the events in seq order: links, MACs, legacy prefix, anchored hashes."""

    keys: _Keyring
    wanted: set[int]
    n: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    last_kind: str = ""
    legacy_upto: int = 0
    first_keyed: int | None = None
    problems: list[str] = field(default_factory=list)
    altered: list[AuditEvent] = field(default_factory=list)
    unverifiable: dict[str, list[int]] = field(default_factory=dict)
    hashes: dict[int, str] = field(default_factory=dict)
    key_ids: dict[str, int] = field(default_factory=dict)

    def add(self, ev: AuditEvent) -> None:
        self.n += 1
        self._link(ev)
        if ev.seq in self.wanted:
            self.hashes[ev.seq] = ev.hash
        if ev.key_id is None:
            self._legacy(ev)
        else:
            self._keyed(ev)
        self.last_seq, self.last_hash, self.last_kind = ev.seq, ev.hash, ev.kind

    def _link(self, ev: AuditEvent) -> None:
        if ev.seq != self.last_seq + 1:
            missing = _seqs(list(range(self.last_seq + 1, ev.seq)))
            self.problems.append(f"{missing} missing: {ev.name} follows event {self.last_seq}")
        if ev.prev_hash != self.last_hash:
            self.problems.append(
                f"{ev.name}: its prev_hash {ev.prev_hash[:12]}… does not match the hash "
                f"{self.last_hash[:12]}… of the event before it (an event was removed, "
                "inserted or altered)"
            )

    def _legacy(self, ev: AuditEvent) -> None:
        if self.first_keyed is not None:
            self.problems.append(
                f"{ev.name} is unkeyed but follows keyed event {self.first_keyed}: events are never "
                "written unkeyed any more, so it was inserted or rewritten without the audit key"
            )
            return
        recomputed = event_hash(*ev.fields)
        if recomputed != ev.hash:
            self.problems.append(
                f"{ev.name} (a legacy unkeyed event) was altered: stored hash {ev.hash[:12]}…, "
                f"recomputed {recomputed[:12]}…"
            )
        self.legacy_upto = ev.seq

    def _keyed(self, ev: AuditEvent) -> None:
        key_id = str(ev.key_id)
        self.key_ids[key_id] = self.key_ids.get(key_id, 0) + 1
        if self.first_keyed is None:
            self.first_keyed = ev.seq
        key = self.keys.get(key_id)
        if key is None:
            self.unverifiable.setdefault(key_id, []).append(ev.seq)
            return
        mac = event_mac(key, *ev.fields)
        if not hmac.compare_digest(mac, ev.hash):
            self.altered.append(ev)

    def mac_problems(self) -> list[str]:
        out = []
        if self.altered:
            first = self.altered[0]
            out.append(
                f"{first.name} was altered: its MAC does not verify under audit key {first.key_id} "
                "(changed by someone without the key)"
            )
            rest = [e.seq for e in self.altered[1:]]
            if rest:
                out.append(
                    f"{_seqs(rest)} do not verify either (altered too, or re-hashed after "
                    f"event {first.seq} was changed)"
                )
        for key_id, seqs in self.unverifiable.items():
            out.append(
                f"{_seqs(seqs)} cannot be verified: signed with audit key {key_id}, and "
                f"{self.keys.missing[key_id]}"
            )
        return out


def _head_problems(head: tuple | None, walk: _Walk) -> list[str]:
    if head is None:
        return ["the chain head (synth_audit.head) was removed"] if walk.n else []
    hseq, hkind, hhash = head
    last = walk.last_seq
    if hseq > last:
        missing = (
            f"event {hseq} ({hkind})"
            if hseq == last + 1
            else f"events {last + 1}..{hseq} (the last a {hkind} event)"
        )
        return [
            f"{missing} missing: the chain head records event {hseq} but the log ends at event {last}"
        ]
    if hseq < last:
        return [
            f"event(s) after {hseq} were appended without advancing the chain head "
            f"(the log ends at event {last})"
        ]
    if hhash != walk.last_hash:
        return [
            f"event {hseq} ({hkind}): the chain head records hash {hhash[:12]}…, "
            f"the log holds {walk.last_hash[:12]}…"
        ]
    return []


def _load_anchors(
    signer: AuditSigner, database: str
) -> tuple[Anchor | None, list[Anchor], list[str]]:
    """The work directory's anchor, the store's refresh anchors of this database, and problems."""
    problems: list[str] = []
    own = None
    path = signer.anchor_path(database)
    if path is not None:
        try:
            own = read_anchor(path)
        except AuditError as exc:
            problems.append(str(exc))
    refresh: list[Anchor] = []
    if signer.store_root is not None and signer.store_root.is_dir():
        for p in sorted(signer.store_root.glob(f"*/{REFRESH_ANCHOR}")):
            try:
                a = read_anchor(p)
            except AuditError as exc:
                problems.append(str(exc))
                continue
            if a is not None and a.body.get("database") == database:
                refresh.append(a)
    return own, refresh, problems


def _anchor_signature_problem(a: Anchor, keys: _Keyring, database: str) -> str | None:
    if a.body.get("database") != database:
        return (
            f"the anchor {a.path} names audit database {a.body.get('database')}, not {database}: "
            "it was copied from another log"
        )
    key_id = str(a.body.get("key_id"))
    key = keys.get(key_id)
    if key is None:
        return (
            f"the anchor {a.path} cannot be verified: signed with audit key {key_id}, and "
            f"{keys.missing.get(key_id, 'that key is not available')}"
        )
    body = {k: v for k, v in a.body.items() if k != "mac"}
    if not hmac.compare_digest(key.mac(_canonical(body).encode()), str(a.body.get("mac", ""))):
        return f"the anchor {a.path} does not verify under audit key {key_id}: it was altered or forged"
    return None


def _anchor_problem(a: Anchor, walk: _Walk | None, keys: _Keyring, database: str) -> str | None:
    """How the log contradicts one (authentic) anchor: wiped, emptied, rewound or rewritten."""
    bad = _anchor_signature_problem(a, keys, database)
    if bad:
        return bad
    if walk is None:
        return (
            f"the audit log is gone (no table synth_audit.events) but the anchor {a.describe()} "
            f"records {a.seq} event(s): the log was wiped (its schema dropped)"
        )
    if walk.n == 0 and a.seq > 0:
        return (
            f"the audit log holds no event but the anchor {a.describe()} records {a.seq} "
            "event(s): the log was emptied (wiped)"
        )
    if a.seq > walk.last_seq:
        gone = _seqs(list(range(walk.last_seq + 1, a.seq + 1)))
        return (
            f"the audit log ends at event {walk.last_seq} ({walk.last_kind}) but the anchor "
            f"{a.describe()} records event {a.seq}: {gone} were deleted and the chain head "
            "rewound"
        )
    stored = walk.hashes.get(a.seq)
    if stored is None:
        return f"event {a.seq}, recorded by the anchor {a.describe()}, is missing from the log"
    if stored != a.hash:
        return (
            f"event {a.seq} does not match the anchor {a.describe()}: the anchor records MAC "
            f"{a.hash[:12]}…, the log holds {stored[:12]}…: the event (or one before it) was "
            "rewritten and the chain re-hashed"
        )
    return None


@dataclass
class _Anchors:
    """The anchors one verification checks against the log."""

    signer: AuditSigner
    database: str
    own: Anchor | None
    refresh: list[Anchor]
    problems: list[str]

    @property
    def all(self) -> list[Anchor]:
        return [a for a in (self.own, *self.refresh) if a is not None]

    def check(self, walk: _Walk | None, keys: _Keyring) -> tuple[list[str], list[str]]:
        """(problems, notes) of the anchors against the log (``walk`` None: no log at all)."""
        problems = list(self.problems)
        problems += [p for a in self.all if (p := _anchor_problem(a, walk, keys, self.database))]
        notes = [f"anchor {a.describe()}" for a in self.all]
        if walk is None or self.signer.anchor_dir is None:
            return problems, notes
        if self.own is None and walk.first_keyed is not None:
            problems.append(
                f"no anchor for this audit log at {self.signer.anchor_path(self.database)} although "
                f"the log holds {walk.n} event(s) (keyed since event {walk.first_keyed}): the anchor "
                f"was deleted, or {self.signer.anchor_dir} is not the audit directory of the work "
                "directory that writes this log (pass --workdir)"
            )
        elif self.own is not None and self.own.seq < walk.last_seq:
            notes.append(
                f"the work directory's anchor records event {self.own.seq} of {walk.last_seq}: the "
                "newer events were appended by another work directory or are not anchored yet"
            )
        return problems, notes


def _legacy_notes(walk: _Walk) -> list[str]:
    if not walk.legacy_upto:
        return []
    if walk.first_keyed is not None:
        return [
            f"legacy unkeyed events up to event {walk.legacy_upto} (SHA-256, written before the log "
            f"was keyed); keyed event {walk.first_keyed} seals them"
        ]
    return [
        f"legacy unkeyed events up to event {walk.legacy_upto} (SHA-256 only): not protected against "
        "a database superuser until the next event is appended with the audit key"
    ]


def verify_chain(
    url: str, signer: AuditSigner | None = None, *, check_anchors: bool | None = None
) -> VerifyResult:
    """Walk the chain in seq order: every MAC (or legacy hash), link, the head and the anchors.

    With ``signer`` (the CLI): keys come from its secrets backend only, and the work directory's
    anchor (required once the log holds keyed events) and the store's refresh anchors are checked.
    Without: keys this process loaded (or the bound signer's), no anchor check unless asked.
    """
    explicit = signer is not None
    if signer is not None:
        signer.key()  # verifying needs the key even for a legacy-only log: fail closed without
    signer = signer or bound_signer(url)
    keys = _Keyring(signer, process_keys=not explicit)
    check = explicit if check_anchors is None else check_anchors
    with connect(url, autocommit=True) as conn:
        database = database_identity(conn)
        anchors = (
            _Anchors(signer, database, *_load_anchors(signer, database))
            if check and signer is not None
            else None
        )
        if not _has_schema(conn):
            if anchors is None or not anchors.all:
                raise AuditError(
                    f"{redact(url)} holds no audit log (no table synth_audit.events): "
                    "check the audit database URL (audit.url, default the target database)"
                )
            problems, notes = anchors.check(None, keys)
            return VerifyResult(0, GENESIS_HASH, problems, anchors=notes)
        keyed = _has_key_column(conn)
        walk = _Walk(keys, {a.seq for a in anchors.all} if anchors else set())
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            for ev in _rows(conn, keyed=keyed):
                walk.add(ev)
            head = conn.execute("SELECT seq, kind, hash FROM synth_audit.head").fetchone()
    problems = walk.problems + walk.mac_problems() + _head_problems(head, walk)
    anchor_notes: list[str] = []
    notes = _legacy_notes(walk)
    if anchors is not None:
        more, anchor_notes = anchors.check(walk, keys)
        problems += more
    return VerifyResult(
        walk.n,
        walk.last_hash,
        problems,
        notes,
        head_seq=walk.last_seq,
        key_ids=sorted(walk.key_ids),
        anchors=anchor_notes,
    )
