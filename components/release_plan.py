"""What this update does to one color, decided at program time from config and what AWS says.

The program always runs, in a preview and under `--target` too, so deciding here means a preview
shows concrete capacities and rule moves, and no subset of targets walks around a refusal.
Everything below is pure: AWS is read once before (components/live_state.py).

- The serving color (the rules' truth, not config) gets no new release: version, image or instance
  settings. Its image inputs (template, build variables) are deferred to its next release instead
  of refused, so an edit of image/ never blocks the live stack (P3).
- No update lowers a serving or live color's capacity below what AWS reports; an idle color scales
  to idle_capacity only after it was demoted and drained, and a new release runs at live capacity so
  its gate verifies it (P3).
- Each rule is in place, pending (bluegreen's switch put it on a color, and config now names the
  other: the live stack moves it) or drift (moved by hand: reported, never moved back) (P4, P7).
"""

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pulumi

from components.config import COLORS, Capacity, ConfigError, Rollout, Settings
from components.live_state import (
    PREVIOUS_COLOR_TAG,
    PREVIOUS_VERSION_TAG,
    ROLLED_BACK_TAG,
    GroupView,
    LiveState,
    RuleView,
)

RELEASE_TAG_PREFIX = "bluegreen:release:"
DEFERRED_FIELDS = ("template_hash", "build_variables")
"""Image inputs a serving color keeps until its next release, rather than refusing the update."""
CAPACITY_PROPERTIES = {"min_size": "minSize", "max_size": "maxSize", "desired": "desiredCapacity"}


class LiveColorChange(pulumi.RunError):
    """This update would touch the color serving production traffic; nothing was changed."""


def other_color(color: str) -> str:
    return next(other for other in COLORS if other != color)


def _joined(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _recorded(value: Any) -> str:
    """A value as an Auto Scaling Group tag can hold it: short plain strings as they are, others hashed."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if len(text) <= 64 and all(c.isalnum() or c in "_.:/=+-@" for c in text):
        return text
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Release:
    """Everything that, changed, replaces a color's instances, by config key; tagged on its group."""

    fields: dict[str, str]

    @classmethod
    def of(cls, settings: Settings, template_hash: str) -> "Release":
        baked = not settings.image_id
        build = settings.image_build
        return cls(
            {
                "version": settings.version,
                "image_id": settings.image_id or "baked",
                "template_hash": template_hash[:16] if baked else "",
                "build_variables": _recorded(build.variables()) if baked else "",
                "instance_type": settings.instance_type,
                "key_name": settings.key_name or "",
                "security_group_ids": _recorded(list(settings.security_group_ids)),
                "instance_profile": _recorded(settings.instance_profile),
                "subnet_ids": _recorded(list(settings.subnet_ids)),
                "health_check_grace_period": str(settings.health_check_grace_period),
                "routes": _recorded(
                    {
                        route.name: {k: v for k, v in vars(route).items() if k != "test_priorities"}
                        for route in settings.routes
                    }
                ),
            }
        )

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> "Release":
        return cls({k[len(RELEASE_TAG_PREFIX) :]: v for k, v in tags.items() if k.startswith(RELEASE_TAG_PREFIX)})

    def tags(self) -> dict[str, str]:
        return {RELEASE_TAG_PREFIX + key: value for key, value in self.fields.items()}

    def changes_from(self, running: "Release") -> list[str]:
        return [key for key, value in self.fields.items() if running.fields.get(key) != value]

    def keeping(self, running: "Release", keys: list[str]) -> "Release":
        return Release({**self.fields, **{key: running.fields.get(key, "") for key in keys}})


@dataclass(frozen=True)
class RouteStatus:
    """Where one rule forwards, against the shared intent (active_color)."""

    route: str
    rule: RuleView
    active: str
    kind: str
    """"in_place", "pending" (the live stack's switch moves it) or "drift" (moved by hand)."""

    @property
    def where(self) -> str:
        if self.rule.color:
            return self.rule.color
        if len(self.rule.shares) > 1 and not self.rule.foreign:
            return " / ".join(f"{color} {share} %" for color, share in sorted(self.rule.shares.items()))
        parts = list(self.rule.colors) + (["a target group outside bluegreen"] if self.rule.foreign else [])
        return _joined(parts) if parts else "nothing"

    def describe(self) -> str:
        if self.kind == "in_place":
            return f"{self.route}: on {self.active}"
        if self.kind == "pending" and self.rule.moving_to:
            verb = "finishes" if self.rule.moving_to == self.active else "reverts"
            return (
                f"{self.route}: on {self.where}, an interrupted move to {self.rule.moving_to}; "
                f"{self.active}'s switch {verb} it: all of it to {self.active}"
            )
        if self.kind == "pending":
            return f"{self.route}: on {self.where}; {self.active}'s switch moves it to {self.active}"
        last = self.rule.switched_color
        at = f" at {self.rule.tags.get('bluegreen:switched-at')}" if last else ""
        adopt = f" or active_color names {self.where}" if self.rule.color else ""
        return (
            f"{self.route}: forwards to {self.where} by hand (bluegreen's switch last put it on {last or 'nothing'}"
            f"{at}); traffic stays there until a person moves it{adopt}"
        )


def route_status(rule: RuleView, active: str) -> RouteStatus:
    placed = (rule.switched_color, rule.moving_to)
    if rule.color == active:
        kind = "in_place"
    elif rule.color is not None and rule.color in placed:
        kind = "pending"  # bluegreen's switch put it there (or was putting it there), and config now names the other
    elif not rule.colors and not rule.switched_color:
        kind = "pending"  # never managed by bluegreen: the first release takes it over
    elif len(rule.colors) == 2 and not rule.foreign and rule.moving_to in rule.colors:
        kind = "pending"  # a weighted move bluegreen's switch did not finish: the live stack settles it
    else:
        kind = "drift"
    return RouteStatus(route=rule.route, rule=rule, active=active, kind=kind)


@dataclass(frozen=True)
class CapacityPlan:
    min_size: int
    max_size: int
    desired: int
    verify_count: int
    """Instances the gate must see fit; autoscaling may add more, which the gate then waits for too."""
    note: str
    settled: tuple[str, ...] = ()
    """Group properties AWS already has at the planned value: left to AWS (autoscaling owns desired)."""

    def shown(self) -> str:
        return f"min {self.min_size}, desired {self.desired}, max {self.max_size}"


def _never_lower(config: Capacity, group: GroupView) -> Capacity:
    return Capacity(
        min_size=max(config.min_size, group.min_size),
        max_size=max(config.max_size, group.max_size),
        # desired_capacity is a floor an update restores; above it, autoscaling owns desired.
        desired=max(config.desired, group.desired),
    )


def plan_capacity(
    settings: Settings, live: LiveState, group: GroupView | None, drift: bool, now: datetime
) -> CapacityPlan:
    color, config = settings.color, settings.capacity
    serving = live.serving(color)
    if group is None:
        return CapacityPlan(
            config.min_size, config.max_size, config.desired, config.desired,
            f"{color}: a new group at live capacity, verified by its gate before it can take traffic",
        )  # fmt: skip
    full = _never_lower(config, group)
    last_switch = live.last_switch
    if settings.is_live:
        note = f"{color} is the active color: live capacity"
    elif serving:
        note = (
            f"{color} is idle by config but still serves {_joined(serving)}: "
            "it keeps its capacity until the rules move away"
        )
    elif settings.idle_capacity is None:
        note = f"{color} is idle and keeps live capacity (idle_capacity: full)"
    elif drift:
        note = f"{color} is idle, but rules were moved by hand: it keeps its capacity until that is resolved"
    elif last_switch is None or group.created > last_switch:
        note = f"{color} is idle; this release has not served traffic yet and keeps live capacity, ready to promote"
    elif now < (drained_at := last_switch + timedelta(seconds=settings.drain_seconds)):
        note = (
            f"{color} is draining until {drained_at.isoformat(timespec='seconds')}: it keeps its capacity; "
            f"the first update after that scales it to {settings.idle_capacity}"
        )
    else:
        idle = settings.idle_capacity
        return _settled(
            CapacityPlan(idle, config.max_size, idle, idle, f"{color} is idle and drained: scaled to {idle}"), group
        )
    if full.min_size > config.min_size or full.max_size > config.max_size or full.desired > config.desired:
        note += f" (AWS reports more than config: {full.min_size}/{full.desired}/{full.max_size} min/desired/max kept)"
    return _settled(
        CapacityPlan(full.min_size, full.max_size, full.desired, min(full.desired, config.desired), note), group
    )


def _settled(plan: CapacityPlan, group: GroupView) -> CapacityPlan:
    settled = tuple(prop for attr, prop in CAPACITY_PROPERTIES.items() if getattr(plan, attr) == getattr(group, attr))
    return replace(plan, settled=settled)


@dataclass(frozen=True)
class TestRoute:
    """A rule on the route's listener that sends requests carrying the color header to this color."""

    listener_arn: str
    priority: int
    conditions: list[dict[str, Any]]
    """The production rule's own conditions (AWS's shape); the color header is added to them."""
    tags: dict[str, str]


@dataclass(frozen=True)
class Plan:
    """What this update does to the color and its traffic."""

    color: str
    live: bool
    """Live by intent: this stack's color is active_color."""
    serving: list[str]
    """Routes whose rule forwards to this color now."""
    release: Release
    """The release the group gets: config's, with deferred image inputs kept from the running release."""
    deferred: list[str]
    capacity: CapacityPlan
    routes: dict[str, RouteStatus]
    current_group: GroupView | None
    """The group that runs now, if any."""
    test_routes: dict[str, TestRoute]
    rollout: Rollout
    changes: list[str]
    """Release fields this update changes: the group is replaced (all of them when there is no group yet)."""
    warnings: list[str] = field(default_factory=list)

    @property
    def revert(self) -> bool:
        """This update undoes the last switch (a rollback), or an interrupted move away from this color: traffic
        goes back at once, with no steps and no alarm watch, to a release that served it just before."""
        pending = [status.rule for status in self.routes.values() if status.kind == "pending"]
        return bool(self.moves) and all(
            rule.moving_to not in (None, self.color)
            or (
                rule.tags.get(PREVIOUS_COLOR_TAG) == self.color
                and rule.tags.get(PREVIOUS_VERSION_TAG) == self.release.fields["version"]
            )
            for rule in pending
        )

    @property
    def switch_rollout(self) -> Rollout:
        return Rollout(steps=(100,), step_wait_seconds=0, bake_seconds=0, alarms=()) if self.revert else self.rollout

    @property
    def protect(self) -> bool:
        """Serving now, or made to serve by this update's switch: Pulumi then refuses to delete or replace it."""
        return bool(self.serving or self.moves)

    @property
    def moves(self) -> dict[str, str]:
        """Routes this stack's switch moves to its color, with where they come from (live stack only)."""
        if not self.live:
            return {}
        return {route: status.where for route, status in self.routes.items() if status.kind == "pending"}

    @property
    def drift(self) -> dict[str, str]:
        return {route: status.describe() for route, status in self.routes.items() if status.kind == "drift"}

    @property
    def serving_after(self) -> list[str]:
        """Routes this color serves once this update's switch has run."""
        return sorted({*self.serving, *self.moves})

    def announce(self) -> None:
        """Shows the plan in the preview and the update, where a reviewer reads it."""
        pulumi.log.info(self.summary())
        pulumi.log.info(f"capacity: {self.capacity.shown()}. {self.capacity.note}")
        for status in self.routes.values():
            if status.kind != "drift":
                pulumi.log.info(f"traffic: {status.describe()}")
        for warning in self.warnings:
            pulumi.log.warn(warning)

    def summary(self) -> str:
        """One line a reviewer reads in a pull request's preview: release, capacity, traffic."""
        group, version = self.current_group, self.release.fields["version"]
        if group is None:
            release = f"first release {version}: {'bake the image, ' if self._baked else ''}create the group"
        elif self.changes:
            running = Release.from_tags(group.tags).fields.get("version") or "?"
            rebuilt = self._baked and {"version", "template_hash", "build_variables"} & set(self.changes)
            release = (
                f"release {running} -> {version} ({', '.join(self.changes)} changed): "
                f"{'bake a new image, ' if rebuilt else ''}replace group {group.name}"
            )
        else:
            release = f"release {version} unchanged"
        if self.deferred:
            release += " (keeps its image: the image change waits for its next release)"
        capacity = self.capacity.shown()
        if group is not None and not self.changes:
            before = f"min {group.min_size}, desired {group.desired}, max {group.max_size}"
            capacity = f"{before} (unchanged)" if before == capacity else f"{before} -> {capacity}"
        moving: dict[str, list[str]] = {}
        for route, status in self.routes.items():
            if status.kind == "pending":
                moving.setdefault(f"{status.where} -> {status.active}", []).append(route)
        traffic = "; ".join(f"{_joined(sorted(routes))} move {move}" for move, routes in moving.items())
        rollout = self.switch_rollout
        if moving and self.revert:
            traffic += " at once (a rollback)"
        elif moving and (rollout.steps != (100,) or rollout.bake_seconds or rollout.alarms):
            traffic += f" in steps of {', '.join(f'{step} %' for step in self.rollout.steps)} ({self._watched()})"
        traffic = traffic or (f"serves {_joined(self.serving)}" if self.serving else "serves nothing")
        if self.drift:
            traffic += f"; drift by hand on {_joined(sorted(self.drift))}"
        return f"{self.color}: {release}; capacity {capacity}; traffic: {traffic}"

    def _watched(self) -> str:
        rollout = self.rollout
        alarms = f"rollback alarms: {', '.join(rollout.alarms)}" if rollout.alarms else "no rollback alarms"
        return f"{rollout.step_wait_seconds} s apart, then {rollout.bake_seconds} s bake; {alarms}"

    @property
    def _baked(self) -> bool:
        return self.release.fields["image_id"] == "baked"

    def routes_after(self, own_target_groups: dict[str, str]) -> dict[str, dict[str, Any]]:
        """Per route, the color and target groups its rule forwards to once this update is done."""
        moves = self.moves
        return {
            route: {
                "color": self.color if route in moves else (status.rule.color or status.where),
                "target_group_arns": [own_target_groups[route]]
                if route in moves
                else list(status.rule.target_group_arns),
            }
            for route, status in self.routes.items()
        }

    @property
    def settled_group(self) -> tuple[str, ...]:
        """With the release unchanged the group keeps its template version, whatever a refresh read from AWS
        (a version made in the console must not replace the group)."""
        return ("launchTemplate",) if self.current_group is not None and not self.changes else ()

    def traffic(self) -> dict[str, str]:
        """Per route: where it forwards now, and where the live stack's switch moves it."""
        return {
            route: f"{status.where} -> {status.active}" if status.kind == "pending" else status.where
            for route, status in self.routes.items()
        }


def check_references(settings: Settings, live: LiveState) -> None:
    """Config that names things in AWS: the rollback alarms exist, the test rules' priorities are free (P8)."""
    missing = [name for name in settings.rollout.alarms if name not in live.alarms]
    if missing:
        raise ConfigError(f"bluegreen:rollback_alarms names CloudWatch alarms that do not exist: {', '.join(missing)}")
    for route in settings.routes:
        listener = live.rules[route.name].listener_arn
        for color, priority in (route.test_priorities or {}).items():
            production = live.rules[route.name].priority
            if production and priority >= production:
                raise ConfigError(
                    f"bluegreen:routes.{route.name}.test_priorities.{color} ({priority}) must be lower than the "
                    f"route's production rule's priority ({production}): the load balancer evaluates rules in order, "
                    "and a test rule behind the production rule is never reached"
                )
            holder = live.priorities.get(listener, {}).get(priority)
            if (
                holder is not None
                and not test_rule_tags(settings.app_name, color, route.name).items() <= holder.items()
            ):
                raise ConfigError(
                    f"bluegreen:routes.{route.name}.test_priorities.{color}: priority {priority} is taken on "
                    f"listener {listener} by a rule that is not this route's {color} test rule"
                )


def test_rule_tags(app_name: str, color: str, route: str) -> dict[str, str]:
    return {"app": app_name, "color": color, "route": route, "managed-by": "bluegreen", "bluegreen:test-route": "true"}


def plan_release(settings: Settings, live: LiveState, template_hash: str, now: datetime) -> Plan:
    """Raises LiveColorChange when the update would touch the serving color, before anything is registered."""
    check_references(settings, live)
    color = settings.color
    serving = live.serving(color)
    routes = {route: route_status(rule, settings.active_color) for route, rule in live.rules.items()}
    drift = [status for status in routes.values() if status.kind == "drift"]
    wanted = Release.of(settings, template_hash)
    current = group = live.groups[0] if live.groups else None
    running = Release.from_tags(group.tags) if group else None
    changes = list(wanted.fields)
    deferred: list[str] = []
    warnings = [f"drift: {status.describe()}" for status in drift]
    release = wanted
    promoted = settings.is_live and any(status.kind == "pending" for status in routes.values())
    if group is not None and running is not None:
        unrecorded = [key for key in wanted.fields if key not in running.fields]
        if unrecorded:
            # A group made by an earlier version of this program, or tags removed by hand: adopt it as it runs.
            running = Release({**{key: wanted.fields[key] for key in unrecorded}, **running.fields})
            warnings.append(
                f"{group.name} has no record of {_joined(unrecorded)}: taken as configured; "
                "`pulumi up --refresh` writes the record on the group"
            )
        changes = wanted.changes_from(running)
        if serving or promoted:
            # The color takes (or keeps) traffic in this update: it does so with the release it runs.
            deferred = [key for key in changes if key in DEFERRED_FIELDS]
            refused = [key for key in changes if key not in DEFERRED_FIELDS]
            if refused:
                raise LiveColorChange(_refusal(settings, serving, refused, wanted, running))
            release, changes = wanted.keeping(running, deferred), []
            if deferred:
                warnings.append(
                    f"{color} keeps the image it runs while it takes traffic: the change of {_joined(deferred)} "
                    f"(image/ or its build settings) waits for {color}'s next release"
                )
        elif changes:
            _refuse_while_draining(settings, live, group, now)
            group = None  # a new release: the engine replaces the group, and the new one starts at live capacity
    plan = Plan(
        color=color,
        live=settings.is_live,
        serving=serving,
        release=release,
        deferred=deferred,
        capacity=plan_capacity(settings, live, group, bool(drift), now),
        routes=routes,
        current_group=current,
        rollout=settings.rollout,
        changes=changes,
        test_routes={
            route.name: TestRoute(
                listener_arn=live.rules[route.name].listener_arn,
                priority=route.test_priorities[color],
                conditions=live.rules[route.name].conditions,
                tags=test_rule_tags(settings.app_name, color, route.name),
            )
            for route in settings.routes
            if route.test_priorities
        },
        warnings=warnings,
    )
    _refuse_a_rolled_back_release(settings, plan)
    if plan.moves and drift:
        raise LiveColorChange(
            f"refusing to move {_joined(sorted(plan.moves))} to {color} while other rules were moved by hand: all "
            f"rules move together or none. {'; '.join(status.describe() for status in drift)}"
        )
    return plan


def _refuse_a_rolled_back_release(settings: Settings, plan: Plan) -> None:
    """A promotion the alarm watch rolled back is not tried again by an unchanged (or scheduled) update."""
    mark = f"{settings.color}@{settings.version}@"
    for status in plan.routes.values():
        rolled_back = status.rule.tags.get(ROLLED_BACK_TAG, "")
        when = rolled_back.removeprefix(mark)
        if plan.moves and rolled_back.startswith(mark) and when != settings.rollout.acknowledged_rollback:
            raise LiveColorChange(
                f"{settings.color} {settings.version} was rolled back automatically at {when}; an update with the same "
                f"release does not promote it again. Release a new version to {settings.color}, or set "
                f'bluegreen:rollback_acknowledged to "{when}" on the {settings.color} stack to try this one again'
            )


def _refuse_while_draining(settings: Settings, live: LiveState, group: GroupView, now: datetime) -> None:
    """A group that served until the last switch still has requests in flight until the drain delay passed."""
    last = live.last_switch
    if last is None or group.created > last:
        return
    drained_at = last + timedelta(seconds=settings.drain_seconds)
    if now < drained_at:
        raise LiveColorChange(
            f"{settings.color} may have served traffic until {last.isoformat(timespec='seconds')}: its group "
            f"{group.name} drains until {drained_at.isoformat(timespec='seconds')}. Release {settings.color} after "
            "that; a new release now would delete the old group while requests are in flight"
        )


def _shown(value: str | None) -> str:
    if not value:
        return "not recorded"
    return "changed" if value.startswith("sha256:") else value


def _refusal(settings: Settings, serving: list[str], keys: list[str], wanted: Release, running: Release) -> str:
    color, other = settings.color, other_color(settings.color)
    changes = ", ".join(
        f"bluegreen:{key} ({_shown(running.fields.get(key))} -> {_shown(wanted.fields[key])})"
        if not wanted.fields[key].startswith("sha256:")
        else f"bluegreen:{key} (changed)"
        for key in keys
    )
    if serving:
        return (
            f"{color} still serves {_joined(serving)}; deploy to {other} and promote it instead: this update changes "
            f"{changes}, which would replace or change the instances taking traffic. Set the new release on the "
            f"{other} stack, `pulumi up` it, then set active_color: {other} in Pulumi.yaml"
        )
    return (
        f"{color} takes the traffic in this update (a promotion or a rollback) and does so with the release it runs, "
        f"but this update also changes {changes}. Promote first and deploy the change to the idle color after, or "
        f"deploy it to {color} before its promotion"
    )
