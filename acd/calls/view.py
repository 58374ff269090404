"""LiveView: a read-only view of live state (calls, queues, agents, SIP counters) for the REST API,
the wallboard feed and the metrics collector. They read snapshots from here, never the shell's
objects, so the shell can change inside without touching them.

`AgentDesk` is the one way they change anything: the same agent commands feature codes use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

from ..routing import RoutingError

if TYPE_CHECKING:
    from .acd_service import AcdService
    from .call_table import CallTable
    from .ports import ConfigSource

__all__ = ["AgentDesk", "CallCommands", "AgentSnapshot", "CallSnapshot", "CallbackSnapshot", "LiveView",
           "QueueSnapshot"]


class AgentDesk(Protocol):
    """Agent commands from the API; each returns what happened ("logged-in", "not-paused"...)."""

    def login(self, agent_id: str) -> str: ...

    def logout(self, agent_id: str) -> str: ...

    def pause(self, agent_id: str, reason: str) -> str: ...

    def unpause(self, agent_id: str) -> str: ...

    def set_disposition(self, agent_id: str, code: str, notes: str | None = None) -> str | None: ...

    def change_call(self, call_id: str, *, priority: int | None = None, queue: str | None = None,
                    requirements: dict[str, int] | None = None, by: str = "API") -> str: ...

    def set_membership(self, agent_id: str, queue: str, penalty: int | None, *, by: str = "API") -> str: ...


class CallCommands(Protocol):
    """A supervisor's commands on a call in progress (acd.calls.call_control.CallControl)."""

    def hang_up(self, call_id: str, *, by: str = "API") -> str: ...

    def transfer(self, call_id: str, target: str, *, by: str = "API") -> str: ...


class MonitorCommands(Protocol):
    """Supervisors on calls: listen, whisper, barge (acd.calls.monitoring.Monitoring). Each returns a
    short result id ("calling", "changed", "left", or why not)."""

    def start(self, call_id: str, supervisor_id: str, mode: str, *, by: str = "API") -> str: ...

    def change(self, call_id: str, mode: str, *, by: str = "API") -> str: ...

    def stop(self, call_id: str, *, by: str = "API") -> str: ...

    def describe(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class CallSnapshot:
    """One call in progress."""

    call_id: str
    state: str
    trunk: str
    dialled: str | None
    queue: str | None
    seconds: float
    agent: str | None
    ivr_step: str | None
    routing_explanation: str | None
    customer: str | None = None          # the matched customer's name, when the caller was recognised
    waited_seconds: float | None = None  # time in the queue so far (until an agent answered)


@dataclass(frozen=True, slots=True)
class CallbackSnapshot:
    """A caller waiting to be called back (their place in the queue kept), or being called back."""

    call_id: str
    queue: str
    number: str
    requested_at: float
    agent: str | None = None     # the agent calling them back, once one took it


@dataclass(frozen=True, slots=True)
class CallExplanation:
    """Why a queued call is where it is: its place, priority and its source, the routing core's
    latest reasons (agent chosen, queue order), and the story of its routing decisions."""

    call_id: str
    queue: str
    state: str                      # waiting, offered or connected (the routing core's view)
    priority: int | None            # None once the routing core no longer holds the call
    priority_detail: str
    position: int | None
    waited_seconds: float
    place: str                      # rank and why the calls ahead are ahead (while waiting)
    routing: str | None
    order: str | None
    story: tuple[tuple[float, str], ...]


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """One queue's live figures (from the routing engine)."""

    queue: str
    waiting: int
    longest_wait_seconds: float
    agents: int
    offered: int
    answered: int
    abandoned: int
    service_level: float | None
    average_handle_seconds: float
    strategy: str = ""
    ring_timeout_seconds: float = 0.0
    wrap_up_seconds: float = 0.0
    max_waiting: int = 0
    members: Any = None          # agent id -> penalty, as configured now
    retired: bool = False        # removed by a reload, still holding calls


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    """One configured agent; state "logged_out" and no figures when not logged in. `reachable`
    (None when logged out): the routing core can ring the agent's phone; a logged-in agent whose
    phone went away stays in their state but is offered nothing until it registers again."""

    agent_id: str
    name: str
    queues: Any
    registered: bool
    state: str
    skills: Any = None
    pause_reason: str | None = None
    call_id: str | None = None
    calls_handled: int | None = None
    missed_offers: int | None = None
    state_since: float | None = None
    reachable: bool | None = None


class LiveView:
    """Snapshots of the running server. `reactor` provides IReactorTime."""

    def __init__(self, *, reactor, config: "ConfigSource", calls: "CallTable", acd: "AcdService",
                 contacts: Callable[[str], list], counters: Callable[[], dict[str, int]],
                 auth_failures: Callable[[], int]) -> None:
        self.reactor = reactor
        self._config = config
        self._calls = calls
        self._acd = acd
        self._contacts = contacts
        self._counters = counters
        self._auth_failures = auth_failures

    def agent_ids(self) -> list[str]:
        """Configured agents, sorted."""
        agents = self._config.config.agents
        return sorted(agents.agents) if agents else []

    def is_agent(self, agent_id: str) -> bool:
        """True for an agent configured in conf/agents.yaml."""
        agents = self._config.config.agents
        return bool(agents) and agent_id in agents.agents

    def registered(self, agent_id: str) -> bool:
        """True while the agent's phone has a live registration."""
        return bool(self._contacts(agent_id))

    def agents(self) -> list[AgentSnapshot]:
        """Every configured agent with their state, then agents a reload removed who are still logged in
        (on a call: they log out after it)."""
        config = self._config.config.agents
        engine = self._acd.engine
        logged_in = set(engine.agent_ids())
        out = []
        for agent_id in self.agent_ids():
            agent = config.agents[agent_id]
            base = dict(agent_id=agent_id, name=agent.name, queues=agent.queues, registered=self.registered(agent_id),
                        skills=agent.skills)
            if agent_id in logged_in:
                view = engine.agent_view(agent_id)
                out.append(AgentSnapshot(**base, state=view.state.value, pause_reason=view.pause_reason,
                                         call_id=view.call_id, calls_handled=view.calls_handled,
                                         missed_offers=view.missed_offers, reachable=view.reachable,
                                         state_since=self._acd.state_since.get(agent_id)))
            else:
                out.append(AgentSnapshot(**base, state="logged_out"))
        for agent_id in sorted(logged_in - set(self.agent_ids())):  # removed by a reload, still on a call
            view = engine.agent_view(agent_id)
            out.append(AgentSnapshot(agent_id=agent_id, name="", queues=dict(view.queues), skills=dict(view.skills),
                                     registered=self.registered(agent_id), state=view.state.value,
                                     pause_reason=view.pause_reason, call_id=view.call_id,
                                     calls_handled=view.calls_handled, missed_offers=view.missed_offers,
                                     reachable=view.reachable, state_since=self._acd.state_since.get(agent_id)))
        return out

    def unreachable_agents(self) -> int:
        """Logged-in agents whose phone cannot be reached (offered no call)."""
        engine = self._acd.engine
        return sum(1 for view in map(engine.agent_view, engine.agent_ids()) if not view.reachable)

    def logged_in_states(self) -> list[tuple[str, str | None]]:
        """(state, pause reason) of every logged-in agent, configured or not."""
        engine = self._acd.engine
        return [(view.state.value, view.pause_reason) for view in map(engine.agent_view, engine.agent_ids())]

    def now(self) -> float:
        """The server's clock (POSIX seconds): what `state_since` and the like are measured against."""
        return self.reactor.seconds()

    @property
    def generation(self) -> int:
        """The config generation in force (1 at start, +1 per successful reload)."""
        return self._config.generation

    def queues(self) -> list[QueueSnapshot]:
        """Every configured queue with its settings in force now, then queues a reload removed that still
        hold calls (`retired`)."""
        agents = self._config.config.agents
        engine = self._acd.engine
        now = self.reactor.seconds()
        names = list(agents.queues if agents else {})
        retired = engine.retired_queues()
        out = []
        for name in names + [name for name in retired if name not in names]:
            try:
                stats = engine.queue_stats(name, now)
            except RoutingError:
                continue
            routing = engine.queue_config(name)
            members = {agent_id: agent.queues[name] for agent_id, agent in sorted(agents.agents.items())
                       if name in agent.queues} if agents else {}
            out.append(QueueSnapshot(queue=name, waiting=stats.waiting, longest_wait_seconds=stats.longest_wait_seconds,
                                     agents=stats.agents, offered=stats.offered, answered=stats.answered,
                                     abandoned=stats.abandoned, service_level=stats.service_level,
                                     average_handle_seconds=stats.average_handle_seconds, strategy=routing.strategy,
                                     ring_timeout_seconds=routing.ring_timeout_seconds,
                                     wrap_up_seconds=routing.wrap_up_seconds, max_waiting=routing.max_waiting,
                                     members=members, retired=name in retired))
        return out

    def call_explanation(self, call_id: str) -> CallExplanation | None:
        """The explanation of a call the ACD holds, or None."""
        queued = self._acd.calls.get(call_id)
        if queued is None:
            return None
        engine = self._acd.engine
        now = self.reactor.seconds()
        try:
            view = engine.call_view(call_id)
            state, priority = view.state, view.priority
        except RoutingError:
            state, priority = "ended", None
        try:
            position = engine.waiting_status(call_id, now).position
            place = engine.explain_position(call_id, now)
        except RoutingError:
            position, place = None, f"{state} (not in line)"
        return CallExplanation(call_id=call_id, queue=queued.queue, state=state, priority=priority,
                               priority_detail=queued.priority_detail, position=position,
                               waited_seconds=round(queued.waited(now), 1), place=place, routing=queued.explanation,
                               order=queued.order, story=tuple(queued.story))

    def calls(self) -> list[CallSnapshot]:
        """Every call in progress, by Call-ID."""
        now = self.reactor.seconds()
        out = []
        for call_id, session in sorted(self._calls.sessions.items()):
            queued = self._acd.calls.get(call_id)
            last = session.queued
            out.append(CallSnapshot(
                call_id=call_id, state=session.state.value, trunk=session.trunk, dialled=session.route.number,
                queue=last.queue if last is not None else None, seconds=round(now - session.started_at, 1),
                agent=queued.agent_id if queued is not None else None,
                ivr_step=session.ivr.flow_run.step_name if session.ivr else None,
                routing_explanation=queued.explanation if queued is not None else None,
                customer=_customer_name(session),
                waited_seconds=round(queued.waited(now), 1) if queued is not None else None))
        return out

    def callbacks(self) -> list[CallbackSnapshot]:
        """Every callback the ACD holds, oldest request first."""
        out = [CallbackSnapshot(call_id=call_id, queue=queued.queue, number=queued.callback.number,
                                requested_at=queued.callback.requested_at, agent=queued.agent_id)
               for call_id, queued in self._acd.calls.items() if queued.callback is not None]
        return sorted(out, key=lambda callback: callback.requested_at)

    def agents_config(self) -> Any:
        """The AgentsConfig in force (None without conf/agents.yaml): accounts, pause reasons, dispositions."""
        return self._config.config.agents

    def sip_parse_errors(self) -> int:
        """Malformed SIP messages so far."""
        return self._counters().get("parse_errors", 0)

    def auth_failures(self) -> int:
        """Failed Digest authentications so far."""
        return self._auth_failures()


def _customer_name(session: Any) -> str | None:
    """The recognised customer's name from the call's context, or None."""
    context = session.context
    name = context.get("customer.name") if context is not None else None
    return str(name) if name else None
