"""Pictures of account networks: :func:`campaign_graph` gathers the graph of a campaign, and
:func:`render_graph_svg` draws any :class:`Graph` as a standalone SVG.

**What a campaign's graph shows.** Its accounts, each joined to the campaign (a hub in the
middle) by its near-duplicate posts; between accounts, the replies, reposts and mentions the
posts carry; other campaigns two or more of them also took part in, and the banks their attached
images matched, each as a hub of its own (co-membership drawn as a hub, not as every pair: a
campaign of 40 accounts would otherwise be 780 lines). Only the ``max_nodes`` accounts at the
highest risk now (then the most posts) are drawn, the first poster always among them; the
picture says how many were left out.

**The drawing.** Laid out by networkx's spring layout with a fixed seed (the same graph gives the
same picture); accounts sized by their posts and coloured by their highest severity; edges told
apart by dash pattern as well as colour, with a legend; the first poster ringed and starred. It
is safe to inline in a page: every label is escaped (and control, format and direction
characters shown as ``\\uXXXX``), there is no script, no link, no external reference and no
style element (the console's CSP would refuse one); presentation attributes only. It carries a
``<title>`` and a ``<desc>`` that says in words what it shows, for screen readers; the console
puts the same accounts in a table beside it.
"""

from __future__ import annotations

import html
import math
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.networks.keys import keys_in
from vigil.networks.views import CampaignMember, campaign_members, campaign_summaries
from vigil.store.models import AccountLink, AuthorAccount, PostRecord

NodeKind = Literal["account", "campaign", "bank"]
EdgeKind = Literal["campaign", "reply", "repost", "mention", "media"]

#: Accounts drawn at most by default; other campaigns and banks drawn as hubs at most.
MAX_NODES = 40
MAX_HUBS = 8
WIDTH = 960
HEIGHT = 640
_LEGEND_HEIGHT = 92
_MARGIN = 56
_LABEL_CHARS = 22
_SEED = 8
#: Highest severity → fill, and the words the legend gives it.
SEVERITY_COLOURS: tuple[tuple[int, str, str], ...] = (
    (0, "#c3c8d1", "not flagged"),
    (1, "#f6d365", "low (1-3)"),
    (4, "#f0a04b", "medium (4-6)"),
    (7, "#d64545", "high (7-8)"),
    (9, "#7a0f1f", "critical (9-10)"),
)
#: Edge kind → stroke, dash pattern (so that kinds differ without colour too), words.
EDGE_STYLES: dict[EdgeKind, tuple[str, str, str]] = {
    "campaign": ("#8d96a8", "", "posted in campaign"),
    "reply": ("#1f5fbf", "7 3", "replied to"),
    "repost": ("#2e7d32", "12 3 2 3", "reposted"),
    "mention": ("#7b1fa2", "2 3", "mentioned"),
    "media": ("#a3262a", "4 4", "images matched bank"),
}
#: The links the ledger records between accounts, as edge kinds (drawn with an arrowhead).
_DIRECTED: dict[str, EdgeKind] = {"reply": "reply", "repost": "repost", "mention": "mention"}
_ID_PREFIX = re.compile(r"[a-z][a-z0-9-]{0,31}")


@dataclass(frozen=True)
class GraphNode:
    #: Unique in the graph: ``account:<platform>:<ref>``, ``campaign:<id>``, ``bank:<name>``.
    id: str
    kind: NodeKind
    label: str
    posts: int = 0
    max_severity: int = 0
    risk: float = 0.0
    #: The account that made the campaign's first post.
    first: bool = False


@dataclass(frozen=True)
class GraphEdge:
    source: str
    target: str
    kind: EdgeKind
    #: Posts or links behind it.
    weight: int = 1


@dataclass(frozen=True)
class Graph:
    title: str
    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[GraphEdge] = field(default_factory=list)
    #: Accounts not drawn (past the bound).
    left_out: int = 0


def account_node_id(platform: str, author_ref: str) -> str:
    return f"account:{platform}:{author_ref}"


def _chosen(members: list[CampaignMember], max_nodes: int) -> list[CampaignMember]:
    ranked = sorted(members, key=lambda m: (-m.risk, -m.posts, m.first_at))[:max_nodes]
    first = next((m for m in members if m.first), None)
    if first is not None and first not in ranked and ranked:
        ranked[-1] = first
    return ranked


def _links(session: Session, pairs: set[tuple[str, str]]) -> list[GraphEdge]:
    platforms = {platform for platform, _ in pairs}
    refs = {ref for _, ref in pairs}
    rows = session.scalars(
        select(AccountLink)
        .where(
            AccountLink.platform.in_(platforms),
            AccountLink.source_ref.in_(refs),
            AccountLink.target_ref.in_(refs),
        )
        .order_by(AccountLink.id)
    )
    return [
        GraphEdge(
            account_node_id(link.platform, link.source_ref),
            account_node_id(link.platform, link.target_ref),
            _DIRECTED[link.kind],
            link.count,
        )
        for link in rows
        if (link.platform, link.source_ref) in pairs
        and (link.platform, link.target_ref) in pairs
        and link.kind in _DIRECTED
        and link.source_ref != link.target_ref
    ]


def _hubs(
    kind: Literal["campaign", "bank"],
    members: dict[str, set[tuple[str, str]]],
    minimum: int,
) -> tuple[list[GraphNode], list[GraphEdge]]:
    """Hubs for the groups with at least ``minimum`` of the accounts drawn, the largest first."""
    groups = sorted(
        ((name, accounts) for name, accounts in members.items() if len(accounts) >= minimum),
        key=lambda item: (-len(item[1]), item[0]),
    )[:MAX_HUBS]
    edge_kind: EdgeKind = "campaign" if kind == "campaign" else "media"
    nodes = [GraphNode(f"{kind}:{name}", kind, name) for name, _ in groups]
    edges = [
        GraphEdge(account_node_id(*account), f"{kind}:{name}", edge_kind)
        for name, accounts in groups
        for account in sorted(accounts)
    ]
    return nodes, edges


def _other_campaigns(
    session: Session, campaign_id: str, pairs: set[tuple[str, str]]
) -> dict[str, set[tuple[str, str]]]:
    """Other campaigns the accounts drawn posted in (a first post carries no campaign id: the
    campaigns named after one of their posts count too)."""
    mine = keys_in(PostRecord.platform, PostRecord.author_ref, pairs)
    joined = select(PostRecord.campaign_id, PostRecord.platform, PostRecord.author_ref).where(
        mine, PostRecord.campaign_id.is_not(None), PostRecord.campaign_id != campaign_id
    )
    member = PostRecord.__table__.alias("member")
    started = select(member.c.campaign_id, PostRecord.platform, PostRecord.author_ref).where(
        mine, member.c.campaign_id == PostRecord.key, member.c.campaign_id != campaign_id
    )
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for query in (joined.distinct(), started.distinct()):
        for other, platform, author_ref in session.execute(query):
            found[other].add((platform, author_ref))
    return found


def _banks(session: Session, pairs: set[tuple[str, str]]) -> dict[str, set[tuple[str, str]]]:
    rows = session.execute(
        select(AuthorAccount.platform, AuthorAccount.author_ref, AuthorAccount.banks).where(
            keys_in(AuthorAccount.platform, AuthorAccount.author_ref, pairs)
        )
    )
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for platform, author_ref, banks in rows:
        for bank in banks:
            found[str(bank)].add((platform, author_ref))
    return found


def campaign_graph(
    session: Session,
    campaign_id: str,
    *,
    half_life_hours: float,
    max_nodes: int = MAX_NODES,
    now: datetime | None = None,
) -> Graph | None:
    """The graph of a campaign (see the module docstring); None when there is no such campaign."""
    summaries = campaign_summaries(session, [campaign_id])
    if not summaries:
        return None
    members = campaign_members(session, campaign_id, half_life_hours=half_life_hours, now=now)
    drawn = _chosen(members, max_nodes)
    pairs = {(m.platform, m.author_ref) for m in drawn}
    hub = f"campaign:{campaign_id}"
    nodes = [GraphNode(hub, "campaign", campaign_id, posts=summaries[0].posts)]
    edges: list[GraphEdge] = []
    for m in drawn:
        node_id = account_node_id(m.platform, m.author_ref)
        label = f"{m.platform}:{m.author_ref}"
        nodes.append(GraphNode(node_id, "account", label, m.posts, m.max_severity, m.risk, m.first))
        edges.append(GraphEdge(node_id, hub, "campaign", m.posts))
    if pairs:
        edges += _links(session, pairs)
        # Another campaign is a link only when two of these accounts share it; a bank matched
        # by one account's images is worth showing alone.
        campaigns = _hubs("campaign", _other_campaigns(session, campaign_id, pairs), 2)
        banks = _hubs("bank", _banks(session, pairs), 1)
        for hub_nodes, hub_edges in (campaigns, banks):
            nodes += hub_nodes
            edges += hub_edges
    return Graph(
        title=f"Campaign {campaign_id}",
        nodes=nodes,
        edges=edges,
        left_out=len(members) - len(drawn),
    )


# --- drawing --------------------------------------------------------------------------------


def printable(text: str, limit: int | None = None) -> str:
    """``text`` with every character that could hide or reorder what is shown (controls,
    format and direction characters, unassigned ones) written as ``\\uXXXX``, cut to ``limit``
    characters with an ellipsis. Not escaped: escape for the markup it goes into."""
    shown = "".join(
        f"\\u{ord(c):04x}" if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Cn", "Zl", "Zp") else c
        for c in text
    )
    if limit is not None and len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return shown


def _text(text: str, limit: int | None = None) -> str:
    return html.escape(printable(text, limit), quote=True)


def _fill(severity: int) -> str:
    colour = SEVERITY_COLOURS[0][1]
    for floor, fill, _ in SEVERITY_COLOURS:
        if severity >= floor:
            colour = fill
    return colour


def _layout(graph: Graph) -> dict[str, tuple[float, float]]:
    """Node positions inside the drawing area, by a seeded spring layout."""
    # Imported here: networkx takes a while to import, and only drawing needs it.
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(node.id for node in graph.nodes)
    for edge in graph.edges:
        if edge.source in g and edge.target in g and edge.source != edge.target:
            weight = 1.0 + math.log1p(edge.weight)
            if g.has_edge(edge.source, edge.target):
                weight += g[edge.source][edge.target]["weight"]
            g.add_edge(edge.source, edge.target, weight=weight)
    count = g.number_of_nodes()
    if count == 0:
        return {}
    if count == 1:
        positions = {next(iter(g.nodes)): (0.0, 0.0)}
    else:
        spring = nx.spring_layout(g, k=2.0 / math.sqrt(count), iterations=200, seed=_SEED)
        positions = {node: (float(x), float(y)) for node, (x, y) in spring.items()}
    xs = [x for x, _ in positions.values()]
    ys = [y for _, y in positions.values()]
    span_x = max(xs) - min(xs) or 1.0
    span_y = max(ys) - min(ys) or 1.0
    width = WIDTH - 2 * _MARGIN
    height = HEIGHT - _LEGEND_HEIGHT - 2 * _MARGIN
    return {
        node: (
            _MARGIN + (x - min(xs)) / span_x * width if len(xs) > 1 else WIDTH / 2,
            _MARGIN + (y - min(ys)) / span_y * height if len(ys) > 1 else height / 2 + _MARGIN,
        )
        for node, (x, y) in positions.items()
    }


def _radius(node: GraphNode, most_posts: int) -> float:
    if node.kind != "account":
        return 9.0
    return 6.0 + 14.0 * math.sqrt(node.posts / most_posts) if most_posts else 6.0


def _describe(graph: Graph) -> str:
    kinds = Counter(node.kind for node in graph.nodes)
    edges = Counter(edge.kind for edge in graph.edges)
    first = next((node.label for node in graph.nodes if node.first), None)
    parts = [f"{kinds['account']} accounts drawn"]
    if graph.left_out:
        parts[0] += f" ({graph.left_out} more left out)"
    parts.append(f"{kinds['campaign']} campaign hubs and {kinds['bank']} bank hubs")
    links = [f"{edges[k]} {k}" for k in ("reply", "repost", "mention") if edges[k]]
    parts.append("links between accounts: " + (", ".join(links) if links else "none"))
    if edges["media"]:
        parts.append(f"{edges['media']} accounts joined to banks their images matched")
    if first is not None:
        parts.append(f"first posted by {first}")
    return "; ".join(parts) + "."


def _label(x: float, y: float) -> str:
    """A label's opening tag below a node: centred, but kept inside the picture near its
    sides (a label is up to ~140 px wide)."""
    if x < 80:
        return f'<text x="{max(x - 8, 4):.1f}" y="{y:.1f}" text-anchor="start">'
    if x > WIDTH - 80:
        return f'<text x="{min(x + 8, WIDTH - 4):.1f}" y="{y:.1f}" text-anchor="end">'
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle">'


def _node_title(node: GraphNode) -> str:
    if node.kind != "account":
        return f"{node.kind} {node.label}" + (f": {node.posts} posts" if node.posts else "")
    first = ", posted first" if node.first else ""
    return (
        f"{node.label}: {node.posts} posts, highest severity {node.max_severity}, "
        f"risk {node.risk:.1f}{first}"
    )


def _shape(node: GraphNode, x: float, y: float, r: float) -> str:
    fill = _fill(node.max_severity) if node.kind == "account" else "#ffffff"
    if node.kind == "campaign":
        points = f"{x:.1f},{y - r:.1f} {x + r:.1f},{y:.1f} {x:.1f},{y + r:.1f} {x - r:.1f},{y:.1f}"
        return f'<polygon points="{points}" fill="{fill}" stroke="#5b6475" stroke-width="2"/>'
    if node.kind == "bank":
        return (
            f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r:.1f}" height="{2 * r:.1f}" '
            f'fill="{fill}" stroke="#a3262a" stroke-width="2"/>'
        )
    ring = (
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r + 4:.1f}" fill="none" stroke="#1d2330" '
        f'stroke-width="3"/>'
        if node.first
        else ""
    )
    return (
        f'{ring}<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{fill}" stroke="#1d2330" '
        f'stroke-width="1"/>'
    )


def _edge(
    edge: GraphEdge,
    start: tuple[float, float],
    end: tuple[float, float],
    end_radius: float,
    prefix: str,
) -> str:
    colour, dash, words = EDGE_STYLES[edge.kind]
    (x1, y1), (x2, y2) = start, end
    length = math.hypot(x2 - x1, y2 - y1) or 1.0
    # Stop at the target's edge, so that an arrowhead shows outside the circle.
    x2 -= (x2 - x1) / length * (end_radius + 2)
    y2 -= (y2 - y1) / length * (end_radius + 2)
    width = min(4.0, 1.0 + math.log1p(edge.weight) / 2)
    attributes = [
        f'x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}"',
        f'stroke="{colour}" stroke-width="{width:.1f}"',
    ]
    if dash:
        attributes.append(f'stroke-dasharray="{dash}"')
    if edge.kind in _DIRECTED:
        attributes.append(f'marker-end="url(#{prefix}-arrow-{edge.kind})"')
    return f"<line {' '.join(attributes)}><title>{words} ({edge.weight})</title></line>"


def _legend(graph: Graph, top: float) -> list[str]:
    parts = [f'<g font-size="11" fill="#1d2330" transform="translate({_MARGIN},{top:.0f})">']
    x = 0
    for colour, dash, words in EDGE_STYLES.values():
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<line x1="{x}" y1="8" x2="{x + 28}" y2="8" stroke="{colour}" stroke-width="2"'
            f"{dashed}/>"
            f'<text x="{x + 34}" y="12">{words}</text>'
        )
        x += 44 + 7 * len(words)
    x = 0
    for _, fill, words in SEVERITY_COLOURS:
        parts.append(
            f'<circle cx="{x + 7}" cy="34" r="7" fill="{fill}" stroke="#1d2330"/>'
            f'<text x="{x + 19}" y="38">{words}</text>'
        )
        x += 30 + 7 * len(words)
    parts.append(
        '<circle cx="7" cy="60" r="7" fill="#ffffff" stroke="#1d2330" stroke-width="3"/>'
        '<text x="19" y="64">★ posted first; size: posts; ◆ campaign; ■ bank</text>'
    )
    if graph.left_out:
        parts.append(
            f'<text x="360" y="64" font-weight="bold">{graph.left_out} more accounts not '
            "drawn (lower risk, fewer posts)</text>"
        )
    parts.append("</g>")
    return parts


def render_graph_svg(graph: Graph, *, id_prefix: str = "graph") -> str:
    """``graph`` as a standalone SVG document, safe to inline in a page (see the module
    docstring). ``id_prefix`` keeps its element ids apart from others in the same page."""
    if not _ID_PREFIX.fullmatch(id_prefix):
        raise ValueError("id_prefix: a lowercase letter, then lowercase letters, digits and -")
    positions = _layout(graph)
    most_posts = max((n.posts for n in graph.nodes if n.kind == "account"), default=0)
    radius = {node.id: _radius(node, most_posts) for node in graph.nodes}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-labelledby="{id_prefix}-title {id_prefix}-desc" '
        'font-family="system-ui, sans-serif">',
        f'<title id="{id_prefix}-title">{_text(graph.title)}</title>',
        f'<desc id="{id_prefix}-desc">{_text(_describe(graph))}</desc>',
        "<defs>",
        *(
            f'<marker id="{id_prefix}-arrow-{kind}" viewBox="0 0 10 10" refX="9" refY="5" '
            'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="{EDGE_STYLES[kind][0]}"/></marker>'
            for kind in sorted(_DIRECTED.values())
        ),
        "</defs>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        "<g>",
    ]
    for edge in graph.edges:
        if edge.source in positions and edge.target in positions:
            parts.append(
                _edge(
                    edge,
                    positions[edge.source],
                    positions[edge.target],
                    radius[edge.target],
                    id_prefix,
                )
            )
    parts.append("</g>")
    parts.append('<g font-size="11" fill="#1d2330">')
    # Accounts over hubs, and the largest last: none hides a smaller one.
    for node in sorted(graph.nodes, key=lambda n: (n.kind == "account", n.posts)):
        x, y = positions[node.id]
        r = radius[node.id]
        star = "★ " if node.first else ""
        parts.append(
            f"<g><title>{_text(_node_title(node))}</title>{_shape(node, x, y, r)}"
            f"{_label(x, y + r + 13)}{_text(star + node.label, _LABEL_CHARS)}</text></g>"
        )
    parts.append("</g>")
    parts += _legend(graph, HEIGHT - _LEGEND_HEIGHT + 8)
    parts.append("</svg>")
    return "\n".join(parts)
