"""`v` on a run: what the evaluation will measure and cost, before it starts (issue 16 item 5). Two counts, the
CLI's defaults: held-out NLL images (the whole T-step chain per image) and FID samples (0: no FID). The estimate is
repriced as they change (engine/eval/cost.py; the run's config and training speed are read once, in a worker).
Dismisses with the EvalRequest to start, or None when cancelled. A live run's engine evaluates its panel: the
counts do not apply, the estimate is its panel's."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from difftui.engine.eval.counts import DEFAULT_NLL_IMAGES, REPORT_SAMPLES
from difftui.engine.eval.start import EvalRequest, Pricing
from difftui.engine.numbers import format_number
from difftui.engine.text import one_line
from difftui.tui import bindings

__all__ = ["EvaluateScreen", "parse_count"]


def parse_count(text: str, name: str, *, zero: bool) -> tuple[int | None, str]:
    """(count, "") for a whole number ("16", "1,000", "10_000"; 0 only when `zero`), else (None, why not)."""
    cleaned = text.strip().replace(",", "").replace("_", "")
    if not cleaned.isdigit() or (int(cleaned) == 0 and not zero):
        return None, f"{name}: '{text.strip()}' is not a whole number{'' if zero else ' above 0'}"
    if int(cleaned) == 1 and zero:
        return None, f"{name}: FID needs at least 2 samples (or 0: no FID)"
    return int(cleaned), ""


class EvaluateScreen(ModalScreen[EvalRequest | None]):
    HELP_TITLE = "evaluate a run"
    BINDINGS = bindings.EVALUATE
    AUTO_FOCUS = "#evaluate-nll"

    def __init__(self, db_path, run_id: int) -> None:
        super().__init__()
        self.db_path, self.run_id = db_path, run_id
        self.pricing: Pricing | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="evaluate-box"):
            yield Static(f"evaluate run {self.run_id}", id="evaluate-title", markup=False)
            with Horizontal(classes="evaluate-row"):
                yield Static("held-out NLL images", classes="evaluate-label")
                yield Input(str(DEFAULT_NLL_IMAGES), id="evaluate-nll", compact=True)
            with Horizontal(classes="evaluate-row"):
                yield Static("FID samples (0: none)", classes="evaluate-label")
                yield Input("0", id="evaluate-fid", compact=True)
            yield Static("reading the run…", id="evaluate-cost", markup=False)
            yield Static("", id="evaluate-error", markup=False)
            yield Static("enter evaluates, tab next field, esc cancels", id="evaluate-keys")

    def on_mount(self) -> None:
        self.load_pricing()

    @work(thread=True, exclusive=True, group="evaluate-pricing", exit_on_error=False)
    def load_pricing(self) -> None:
        from difftui.engine.eval.start import pricing
        try:
            found = pricing(self.db_path, self.run_id)
        except Exception as e:                      # a run deleted meanwhile, a locked database: said in the dialog
            self.app.call_from_thread(self._say_error, one_line(e))
            return
        self.app.call_from_thread(self._priced, found)

    def _say_error(self, text: str) -> None:
        self.query_one("#evaluate-cost", Static).update(text)

    def _priced(self, found: Pricing) -> None:
        self.pricing = found
        if found.live:
            for field in self.query(Input):
                field.disabled = True
        self.reprice()

    def request(self) -> tuple[EvalRequest | None, str]:
        nll, why = parse_count(self.query_one("#evaluate-nll", Input).value, "NLL images", zero=False)
        if nll is None:
            return None, why
        fid, why = parse_count(self.query_one("#evaluate-fid", Input).value, "FID samples", zero=True)
        if fid is None:
            return None, why
        return EvalRequest(nll_images=nll, samples=fid or None, fid_if_found=bool(fid)), ""

    def reprice(self) -> None:
        request, why = self.request()
        self.query_one("#evaluate-error", Static).update(why)
        if self.pricing is None or request is None:
            return
        lines = self.pricing.cost(request).breakdown()
        if self.pricing.live:
            lines.insert(0, "its engine is training: it evaluates its panel between two steps")
        elif request.samples and not self.pricing.fid_found:
            lines.append("no FID: the Inception weights are missing (? says where to put them)")
        elif request.samples and request.samples < REPORT_SAMPLES:
            lines.append(f"FID at {format_number(request.samples)} samples is a quick number (playbook 5.5)")
        self.query_one("#evaluate-cost", Static).update("\n".join(lines))

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        self.reprice()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.action_submit()

    def action_submit(self) -> None:
        request, why = self.request()
        if request is None:
            self.query_one("#evaluate-error", Static).update(why)
            return
        self.dismiss(EvalRequest() if self.pricing is not None and self.pricing.live else request)

    def action_cancel(self) -> None:
        self.dismiss(None)
