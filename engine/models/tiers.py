"""The tier ladders moved to `difftui.engine.ladders` (torch-free, so the config model can ask them); re-exported
here for the models package."""

from difftui.engine.ladders import LADDERS, Ladder, check_tier, ladder_for, tier_status

__all__ = ["Ladder", "LADDERS", "ladder_for", "check_tier", "tier_status"]
