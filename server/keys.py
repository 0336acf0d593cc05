"""Task keys: how a (namespace, id) pair is encoded as the one string the core and hosts use.

A key is the id itself in the default namespace (the common case pays nothing) and
`namespace + NS_SEP + id` elsewhere. NS_SEP is refused in ids and namespaces (`key_safe`), so
a key always splits back into its two parts.
"""

from __future__ import annotations

DEFAULT_NAMESPACE = "default"
NS_SEP = "\x1f"  # between namespace and id; ASCII unit separator, never printable


def key_safe(name: str) -> bool:
    """Whether a namespace or id may be part of a key: printable, so without NS_SEP."""
    return name.isprintable() and NS_SEP not in name


def task_key(namespace: str, task_id: str) -> str:
    return task_id if namespace == DEFAULT_NAMESPACE else f"{namespace}{NS_SEP}{task_id}"


def split_key(key: str) -> tuple[str, str]:
    """(namespace, id) of a key made by task_key."""
    namespace, _, task_id = key.rpartition(NS_SEP)
    return namespace or DEFAULT_NAMESPACE, task_id
