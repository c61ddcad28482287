//! A dependency graph (a task's, or a whole project's) as SVG: a layered layout (each task one layer
//! right of the latest task it depends on), drawn on the server.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

const NODE_W: i64 = 180;
const NODE_H: i64 = 48;
const GAP_X: i64 = 60;
const GAP_Y: i64 = 20;
const PAD: i64 = 8;

/// What `GET /tasks/{id}/dependencies` and `GET /projects/{id}/graph`
/// answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Graph {
    /// The task's dependencies are done (a task's graph only).
    #[serde(default)]
    pub ready: bool,
    /// More tasks than the graph shows (a project's graph only).
    #[serde(default)]
    pub truncated: bool,
    pub nodes: Vec<Value>,
    pub edges: Vec<Edge>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Edge {
    pub id: Uuid,
    pub task_id: Uuid,
    pub depends_on: Uuid,
}

pub struct Node {
    pub id: Uuid,
    pub title: String,
    pub status: String,
    pub x: i64,
    pub y: i64,
    pub current: bool,
}

pub struct Line {
    pub x1: i64,
    pub y1: i64,
    pub x2: i64,
    pub y2: i64,
}

pub struct Layout {
    pub nodes: Vec<Node>,
    pub lines: Vec<Line>,
    pub width: i64,
    pub height: i64,
    pub node_w: i64,
    pub node_h: i64,
}

impl Layout {
    pub fn of(graph: &Graph, current: Uuid) -> Layout {
        let nodes: Vec<(Uuid, &Value)> = graph
            .nodes
            .iter()
            .filter_map(|n| Some((n["id"].as_str()?.parse().ok()?, n)))
            .collect();
        // Longest path from a task with no upstream; the API's graph is
        // acyclic (it refuses cycles), and the pass count bounds it anyway.
        let mut layer: HashMap<Uuid, i64> = nodes.iter().map(|(id, _)| (*id, 0)).collect();
        for _ in 0..nodes.len() {
            let mut changed = false;
            for e in &graph.edges {
                let up = layer.get(&e.depends_on).copied().unwrap_or(0);
                if let Some(l) = layer.get_mut(&e.task_id)
                    && *l < up + 1
                {
                    *l = up + 1;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let mut rows: HashMap<i64, i64> = HashMap::new();
        let mut at: HashMap<Uuid, (i64, i64)> = HashMap::new();
        let nodes: Vec<Node> = nodes
            .into_iter()
            .map(|(id, n)| {
                let l = layer.get(&id).copied().unwrap_or(0);
                let row = rows.entry(l).or_insert(0);
                let (x, y) = (PAD + l * (NODE_W + GAP_X), PAD + *row * (NODE_H + GAP_Y));
                *row += 1;
                at.insert(id, (x, y));
                let mut title: String =
                    n["title"].as_str().unwrap_or("").chars().take(24).collect();
                if n["title"].as_str().is_some_and(|t| t.chars().count() > 24) {
                    title.push('…');
                }
                Node {
                    id,
                    title,
                    status: n["status"].as_str().unwrap_or("").to_owned(),
                    x,
                    y,
                    current: id == current,
                }
            })
            .collect();
        let lines = graph
            .edges
            .iter()
            .filter_map(|e| {
                let (ux, uy) = at.get(&e.depends_on)?;
                let (dx, dy) = at.get(&e.task_id)?;
                Some(Line {
                    x1: ux + NODE_W,
                    y1: uy + NODE_H / 2,
                    x2: dx - 4,
                    y2: dy + NODE_H / 2,
                })
            })
            .collect();
        let layers = layer.values().max().copied().unwrap_or(0) + 1;
        let tallest = rows.values().max().copied().unwrap_or(1).max(1);
        Layout {
            nodes,
            lines,
            width: PAD * 2 + layers * NODE_W + (layers - 1) * GAP_X,
            height: PAD * 2 + tallest * NODE_H + (tallest - 1) * GAP_Y,
            node_w: NODE_W,
            node_h: NODE_H,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_task_sits_right_of_what_it_waits_for() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        // c waits for b, which waits for a; c also waits for a directly.
        let graph = Graph {
            ready: false,
            truncated: false,
            nodes: [a, b, c]
                .iter()
                .map(|id| json!({"id": id, "title": "t", "status": "todo"}))
                .collect(),
            edges: [(b, a), (c, b), (c, a)]
                .into_iter()
                .map(|(task_id, depends_on)| Edge {
                    id: Uuid::now_v7(),
                    task_id,
                    depends_on,
                })
                .collect(),
        };
        let layout = Layout::of(&graph, c);
        let x = |id| layout.nodes.iter().find(|n| n.id == id).unwrap().x;
        assert!(x(a) < x(b) && x(b) < x(c));
        assert_eq!(layout.lines.len(), 3);
        assert!(layout.nodes.iter().find(|n| n.id == c).unwrap().current);
        assert_eq!(layout.width, PAD * 2 + 3 * NODE_W + 2 * GAP_X);
    }
}
