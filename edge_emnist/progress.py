"""Progress lines: how long something took, and how long it may still take."""


def clock(seconds: float) -> str:
    """'4:07', or '1:02:09' past an hour: for progress lines."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"
