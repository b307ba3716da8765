"""Method patching: instance-level wrappers a hook installs on the model or
the runner, given back after training and when the hook is switched off."""
from typing import Callable, List

from .failure_isolation import IsolatedFailures

_MISSING = object()


class MethodPatching(IsolatedFailures):
    """Piece: :meth:`wrap_method` / :meth:`restore_methods`."""

    def wrap_method(self, owner: object, name: str,
                    make: Callable[[Callable], Callable]) -> None:
        """Replace ``owner.name`` by ``make(original)`` on the instance only.

        The class and other instances keep their method. The replacement is
        removed again by :meth:`restore_methods`, which runs after
        ``after_train`` and when the hook is disabled.

        Args:
            owner: Object whose method is wrapped (a module, the runner).
            name: Method name.
            make: Gets the original bound method, returns the replacement.
        """
        original = getattr(owner, name)
        before = owner.__dict__.get(name, _MISSING)
        replacement = make(original)
        setattr(owner, name, replacement)
        if '_wrapped' not in self.__dict__:
            self._wrapped: List[tuple] = []
        self._wrapped.append((owner, name, replacement, before))

    def restore_methods(self) -> None:
        """Undo :meth:`wrap_method`, latest first (a wrapper installed over
        ours by someone else is left in place)."""
        wrapped = self.__dict__.get('_wrapped', [])
        while wrapped:
            owner, name, replacement, before = wrapped.pop()
            if owner.__dict__.get(name) is not replacement:
                continue
            if before is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, before)

    def _on_disabled(self) -> None:
        try:
            self.restore_methods()
        finally:
            super()._on_disabled()

    def _on_train_end(self, runner) -> None:
        super()._on_train_end(runner)
        self.restore_methods()
