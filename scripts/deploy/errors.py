"""The one error a step ends with: a sentence for the user, naming the fix where there is one."""


class Refusal(Exception):
    """Ends the step with `error: <message>` and exit status 1; nothing half-done is left
    behind by the step that raises it (each step refuses before it changes anything)."""
