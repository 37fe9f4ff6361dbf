"""The one resource every asset uses: config, work directory, secrets and the artifact store."""

from pathlib import Path

import dagster as dg

from synth_assets.core.audit import AuditSigner, bind_audit_log
from synth_assets.core.config import SynthConfig, load_config
from synth_assets.core.secrets import SecretsBackend, backend_from_config
from synth_assets.core.store import RefreshPaths, RefreshStore, store_for

from .lineage import run_actor


class SynthResource(dg.ConfigurableResource):
    """Where a refresh reads its settings and writes its artifacts."""

    config_file: str | None = None
    workdir: str = ".synth"
    source_url: str | None = None  # overrides source.url (the CLI's --source)

    def settings(self) -> SynthConfig:
        cfg = load_config(self.config_file)
        if self.source_url:
            cfg = cfg.model_copy(
                update={"source": cfg.source.model_copy(update={"url": self.source_url})}
            )
        return cfg

    @property
    def work(self) -> Path:
        return Path(self.workdir).expanduser().resolve()

    def secrets(self) -> SecretsBackend:
        return backend_from_config(self.settings().secrets, self.work)

    def store(self) -> RefreshStore:
        return store_for(self.settings(), self.work)

    def fetch(self, rid: str, *rels: str) -> RefreshStore:
        """This step's inputs (files, or directories ending in '/') and the audit anchors, from
        an S3 store into its working copy; returns the store. Steps then share nothing but the
        store and PostgreSQL: each may run in its own pod with an empty work directory."""
        from synth_assets.core.artifacts import fetch_inputs

        cfg, store = self.settings(), self.store()
        fetch_inputs(cfg, store, rid, *rels)
        self._anchors("fetch")
        return store

    def send(self, rid: str, *rels: str) -> None:
        """This step's outputs and the audit anchors (and the refresh's own anchor) to an S3
        store, for the steps after it (see :meth:`fetch`)."""
        from synth_assets.core.artifacts import send_outputs

        cfg, store = self.settings(), self.store()
        anchor = [RefreshPaths.ANCHOR] if store.paths(rid).anchor.is_file() else []
        send_outputs(cfg, store, rid, *rels, *anchor)
        self._anchors("send")

    def audit_signer(self) -> AuditSigner:
        """Signs audit events with the secrets backend's audit key; anchors under <workdir>/audit."""
        return AuditSigner.for_config(self.settings(), self.work)

    def meta_url(self) -> str:
        """The audit/budget database (audit.url, else the target database).

        Binds this configuration's audit signer to it, so core code that records events there
        knowing only the URL (loader, teardown, the failure sensor) signs with the configured key.
        """
        from synth_assets.core import pg

        cfg = self.settings()
        url = pg.resolve_url(cfg.audit_url(), self.work)
        bind_audit_log(self.audit_signer(), url)
        return url

    def audit(self, context, kind: str, refresh_id: str | None, payload: dict) -> None:
        """Append a keyed event to the audit log (audit.url, else the target) and anchor it.

        Fails closed: a refresh whose steps cannot be recorded does not go on.
        """
        from synth_assets.core.audit import record_event

        actor = run_actor(context)
        self._anchors("fetch")
        record_event(
            self.meta_url(),
            kind,
            refresh_id,
            {**payload, "run_id": context.run_id},
            actor,
            signer=self.audit_signer(),
        )
        self._anchors("send")

    def anchor_audit(self) -> None:
        """Anchor the audit log's head after core code appended inside its own transaction."""
        from synth_assets.core.audit import anchor_head

        anchor_head(self.meta_url(), self.audit_signer())
        self._anchors("send")

    def _anchors(self, way: str) -> None:
        """The audit anchors from (``fetch``) or to (``send``) an S3 store; nothing locally."""
        from synth_assets.core.artifacts import fetch_anchors, send_anchors
        from synth_assets.core.audit import ANCHOR_DIR

        cfg, store = self.settings(), self.store()
        if store.remote is None:  # a local store: the anchors are already where appends look
            return
        anchor_dir = self.work / ANCHOR_DIR  # the audit signer's (AuditSigner.for_config)
        (fetch_anchors if way == "fetch" else send_anchors)(cfg, store, anchor_dir)
