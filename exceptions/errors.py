from enum import StrEnum


class ExceptionError(StrEnum):
    UNKNOWN_TYPE = "unknown_exception_type"
    ILLEGAL_TRANSITION = "illegal_transition"
    NOT_YOUR_QUEUE = "queue_not_allowed"
    PERMISSION_DENIED = "permission_denied"
    INVALID_ACTION_INPUT = "invalid_action_input"
    UNKNOWN_ACTION = "unknown_action"
    ACTION_NOT_AVAILABLE = "action_not_available"
    NOT_A_MEMBER = "not_a_queue_member"
    ALREADY_OPEN = "already_open"
    PROBLEM_REMAINS = "problem_remains"


NOTE_REQUIRED = "A note is required."
REASON_REQUIRED = "A reason is required."
NOT_YOUR_QUEUE = "You do not work the {queue} queue; ask its team to take this on."
PERMISSION_DENIED = "Your role may not {action}."
ALREADY_CLOSED = "This exception is already {status}; reopen it first."
