"""Settings of the release: the removal list (`MTA_REMOVALS`), and the stored list as the
records and the release read it."""

from pathlib import Path

import dagster as dg

from mta_pipeline import config
from mta_pipeline.core.removals import RemovalListError, Removals, parse_removals
from mta_pipeline.resources.storage import Storage


class ReleaseSettings(dg.ConfigurableResource):
    """`removals`: path of the removal list (empty: nothing removed). See core/removals.py."""

    removals: str = ""

    def removal_list(self) -> Removals:
        """The parsed list; a missing, unreadable or malformed file is a ConfigError naming it."""
        if not self.removals.strip():
            return Removals()
        path = Path(self.removals.strip()).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise config.ConfigError(
                f"{config.MTA_REMOVALS}={path} cannot be read ({type(exc).__name__}: {exc}); "
                "point it at a UTF-8 text file of video and comment ids, or unset it."
            ) from None
        try:
            return parse_removals(text, source=f"{config.MTA_REMOVALS}={path}")
        except RemovalListError as exc:
            raise config.ConfigError(str(exc)) from None


def stored_removals(storage: Storage) -> Removals:
    """The stored removal list (`mta_removals`); missing fails, never reads as "remove nothing"."""
    data = storage.read_table(config.T_MTA_REMOVALS)
    if data is None:
        raise dg.Failure("mta_removals is not materialized yet: materialize it first.")
    return Removals.from_rows(data.to_pylist())
