//! Tasks: a project's tree, creating and editing tasks, a task's detail
//! (inputs, outputs, versions, lock, who else is looking, its dependency
//! graph) and running an agent on it.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::graph::{Graph, Layout};
use super::model::{Agent, Execution, Member, People, Project, Task, TaskVersion};
use crate::Web;
use crate::form::{Posted, blank_is_none};
use crate::session::Visit;
use crate::view::{Chrome, PageError, Pager, first_page, html_as, read_in_org};

/// A task in the tree, with how deep it sits (0 for top-level tasks).
pub struct Row {
    pub depth: usize,
    pub task: Task,
}

/// The tree flattened in display order: each task followed by its
/// children. Tasks whose parent is outside the page stay at the top level.
fn rows(tasks: &[Task]) -> Vec<Row> {
    fn visit(parent: Uuid, depth: usize, tasks: &[Task], out: &mut Vec<Row>) {
        for t in tasks.iter().filter(|t| t.parent_id == Some(parent)) {
            out.push(Row {
                depth: depth.min(8),
                task: t.clone(),
            });
            if depth < 32 {
                visit(t.id, depth + 1, tasks, out);
            }
        }
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks
        .iter()
        .filter(|t| t.parent_id.is_none_or(|p| !tasks.iter().any(|o| o.id == p)))
    {
        out.push(Row {
            depth: 0,
            task: t.clone(),
        });
        visit(t.id, 1, tasks, &mut out);
    }
    out
}

#[derive(Template)]
#[template(path = "tasks.html")]
struct TreePage {
    chrome: Chrome,
    projects: Vec<Project>,
    project: Project,
    rows: Vec<Row>,
    tasks: Vec<Task>,
    total: u64,
    pager: Pager,
    /// For naming assignees.
    people: People,
    /// The project's dependency graph, when it has any dependency.
    graph: Option<Layout>,
    graph_truncated: bool,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct TreeQuery {
    #[serde(default)]
    project: Option<Uuid>,
    #[serde(default = "first_page")]
    page: u32,
}

/// Tasks a tree page shows at a time.
const TREE_PAGE: u32 = 100;

pub async fn tree(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
    Query(q): Query<TreeQuery>,
) -> Result<Response, PageError> {
    let at = (q.project, q.page.max(1));
    render_tree(&web, &visit, org, at, None, StatusCode::OK).await
}

/// `at`: the project (the org's default when `None`) and the page of its
/// tasks.
async fn render_tree(
    web: &Web,
    visit: &Visit,
    org: Uuid,
    (project, page): (Option<Uuid>, u32),
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let (api, who) = (web.api(), visit.caller());
    let projects = api
        .list::<Project>(who, format!("/orgs/{org}/projects?pageSize=100"))
        .await?
        .items;
    let project = match project {
        Some(id) => projects.iter().find(|p| p.id == id),
        None => projects.iter().find(|p| p.is_default).or(projects.first()),
    }
    .cloned()
    .ok_or(PageError::NotFound)?;
    let chrome = Chrome::load(
        web,
        visit,
        org,
        "tasks",
        format!("Tasks · {}", project.name),
    )
    .await?
    .listen(format!("project:{}", project.id));
    let (tasks, graph, agents, members) = futures_util::join!(
        api.list::<Task>(
            who,
            format!(
                "/projects/{}/tasks?pageSize={TREE_PAGE}&page={page}",
                project.id
            )
        ),
        api.get::<Graph>(who, format!("/projects/{}/graph", project.id)),
        api.list::<Agent>(who, format!("/orgs/{org}/agents?pageSize=100")),
        api.list::<Member>(who, format!("/orgs/{org}/members?pageSize=100")),
    );
    let (tasks, graph) = (tasks?, graph?);
    let people = People {
        agents: agents?.items,
        members: members?.items,
    };
    let page = TreePage {
        graph_truncated: graph.truncated,
        graph: (!graph.edges.is_empty()).then(|| Layout::of(&graph, Uuid::nil())),
        rows: rows(&tasks.items),
        people,
        pager: Pager::new(
            &chrome.at("/tasks"),
            &format!("project={}", project.id),
            page,
            TREE_PAGE,
            tasks.total,
        ),
        total: tasks.total,
        tasks: tasks.items,
        chrome,
        projects,
        project,
        error,
    };
    html_as(status, &page)
}

#[derive(Deserialize)]
pub struct NewTask {
    project: Uuid,
    #[serde(default)]
    title: String,
    #[serde(default, deserialize_with = "blank_is_none")]
    description: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    parent: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    priority: Option<String>,
}

pub async fn create(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
    Posted(form): Posted<NewTask>,
) -> Result<Response, PageError> {
    let mut body = Map::new();
    body.insert("title".into(), json!(form.title));
    if let Some(d) = &form.description {
        body.insert("description".into(), json!(d));
    }
    if let Some(p) = form.parent.as_deref().and_then(|p| p.parse::<Uuid>().ok()) {
        body.insert("parentId".into(), json!(p));
    }
    if let Some(p) = form.priority.as_deref().and_then(|p| p.parse::<i64>().ok()) {
        body.insert("priority".into(), json!(p));
    }
    // The project must be this org's: the page's org and the API's agree.
    read_in_org::<Project>(&web, &visit, org, format!("/projects/{}", form.project)).await?;
    match web
        .api()
        .send(
            visit.caller(),
            Method::POST,
            format!("/projects/{}/tasks", form.project),
            Some(&Value::Object(body)),
        )
        .await
    {
        Ok(task) => {
            let id = task["id"].as_str().unwrap_or_default();
            Ok(Redirect::to(&format!("/o/{org}/tasks/{id}")).into_response())
        }
        Err(f) if f.shown_on_page() => {
            render_tree(
                &web,
                &visit,
                org,
                (Some(form.project), 1),
                Some(f.message),
                f.status,
            )
            .await
        }
        Err(f) => Err(f.into()),
    }
}

#[derive(Template)]
#[template(path = "task.html")]
struct TaskPage {
    chrome: Chrome,
    task: Task,
    project: Project,
    people: People,
    versions: Vec<TaskVersion>,
    executions: Vec<Execution>,
    graph: Layout,
    graph_ready: bool,
    /// What this task depends on directly: (edge id, upstream title).
    upstream: Vec<(Uuid, String)>,
    /// Tasks of the project it could depend on.
    candidates: Vec<Task>,
    error: Option<String>,
}

impl TaskPage {
    /// Who holds the edit lock, in words.
    fn lock_holder(&self) -> Option<String> {
        Some(self.people.holder(&self.task.lock.as_ref()?["holder"]))
    }

    fn assignee(&self) -> String {
        self.task
            .assignee
            .as_ref()
            .map_or_else(|| "nobody".to_owned(), |a| self.people.assignee(a))
    }
}

pub async fn detail(
    State(web): State<Web>,
    visit: Visit,
    Path((org, id)): Path<(Uuid, Uuid)>,
) -> Result<Response, PageError> {
    render_task(&web, &visit, org, id, None, StatusCode::OK).await
}

async fn render_task(
    web: &Web,
    visit: &Visit,
    org: Uuid,
    id: Uuid,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let (api, who) = (web.api(), visit.caller());
    let task: Task = read_in_org(web, visit, org, format!("/tasks/{id}")).await?;
    let chrome = Chrome::load(web, visit, org, "tasks", task.title.clone())
        .await?
        .listen(format!("task:{id}"));
    let (project, agents, members, versions, executions, graph, siblings) = futures_util::join!(
        api.get::<Project>(who, format!("/projects/{}", task.project_id)),
        api.list::<Agent>(who, format!("/orgs/{org}/agents?pageSize=100")),
        api.list::<Member>(who, format!("/orgs/{org}/members?pageSize=100")),
        api.list::<TaskVersion>(who, format!("/tasks/{id}/versions?pageSize=20")),
        api.list::<Execution>(
            who,
            format!("/orgs/{org}/executions?taskId={id}&pageSize=10")
        ),
        api.get::<Graph>(who, format!("/tasks/{id}/dependencies")),
        api.list::<Task>(
            who,
            format!("/projects/{}/tasks?pageSize=100", task.project_id)
        ),
    );
    let graph = graph?;
    let title_of = |task: Uuid| {
        graph
            .nodes
            .iter()
            .find(|n| n["id"].as_str() == Some(task.to_string().as_str()))
            .and_then(|n| n["title"].as_str())
            .unwrap_or("a task")
            .to_owned()
    };
    let upstream: Vec<(Uuid, String)> = graph
        .edges
        .iter()
        .filter(|e| e.task_id == id)
        .map(|e| (e.id, title_of(e.depends_on)))
        .collect();
    let linked: Vec<Uuid> = graph
        .edges
        .iter()
        .filter(|e| e.task_id == id)
        .map(|e| e.depends_on)
        .collect();
    let candidates = siblings?
        .items
        .into_iter()
        .filter(|t| t.id != id && !linked.contains(&t.id))
        .collect();
    let page = TaskPage {
        upstream,
        candidates,
        graph: Layout::of(&graph, id),
        graph_ready: graph.ready,
        project: project?,
        people: People {
            agents: agents?.items,
            members: members?.items,
        },
        versions: versions?.items,
        executions: executions?.items,
        chrome,
        task,
        error,
    };
    html_as(status, &page)
}

#[derive(Deserialize)]
pub struct TaskEdit {
    version: i64,
    #[serde(default, deserialize_with = "blank_is_none")]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    status: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    priority: Option<String>,
}

pub async fn update(
    State(web): State<Web>,
    visit: Visit,
    Path((org, id)): Path<(Uuid, Uuid)>,
    Posted(form): Posted<TaskEdit>,
) -> Result<Response, PageError> {
    owned(&web, &visit, org, id).await?;
    let mut body = Map::new();
    body.insert("version".into(), json!(form.version));
    if let Some(t) = form.title {
        body.insert("title".into(), json!(t));
    }
    if let Some(d) = form.description {
        body.insert("description".into(), json!(d));
    }
    if let Some(s) = form.status {
        body.insert("status".into(), json!(s));
    }
    if let Some(p) = form.priority.as_deref().and_then(|p| p.parse::<i64>().ok()) {
        body.insert("priority".into(), json!(p));
    }
    let answer = web
        .api()
        .send(
            visit.caller(),
            Method::PATCH,
            format!("/tasks/{id}"),
            Some(&Value::Object(body)),
        )
        .await;
    after_write(&web, &visit, org, id, answer.map(|_| ())).await
}

#[derive(Deserialize)]
pub struct RunForm {
    agent: Uuid,
}

/// Runs an agent on the task and opens the execution.
pub async fn run(
    State(web): State<Web>,
    visit: Visit,
    Path((org, id)): Path<(Uuid, Uuid)>,
    Posted(form): Posted<RunForm>,
) -> Result<Response, PageError> {
    owned(&web, &visit, org, id).await?;
    let answer = web
        .api()
        .send(
            visit.caller(),
            Method::POST,
            format!("/tasks/{id}/execute"),
            Some(&json!({ "agentId": form.agent })),
        )
        .await;
    match answer {
        Ok(execution) => {
            let e = execution["id"].as_str().unwrap_or_default();
            Ok(Redirect::to(&format!("/o/{org}/executions/{e}")).into_response())
        }
        Err(f) => after_write(&web, &visit, org, id, Err(f)).await,
    }
}

#[derive(Deserialize)]
pub struct DependencyForm {
    /// Add this upstream task…
    #[serde(default)]
    depends_on: Option<Uuid>,
    /// …or remove this edge.
    #[serde(default)]
    remove: Option<Uuid>,
}

/// Adds or removes one of the task's dependencies; a cycle is refused by
/// the API, and its message (naming the path) is shown on the page.
pub async fn dependency(
    State(web): State<Web>,
    visit: Visit,
    Path((org, id)): Path<(Uuid, Uuid)>,
    Posted(form): Posted<DependencyForm>,
) -> Result<Response, PageError> {
    owned(&web, &visit, org, id).await?;
    let (method, path, body) = match (form.depends_on, form.remove) {
        (Some(upstream), None) => (
            Method::POST,
            format!("/tasks/{id}/dependencies"),
            Some(json!({ "dependsOn": upstream })),
        ),
        (None, Some(edge)) => (
            Method::DELETE,
            format!("/tasks/{id}/dependencies/{edge}"),
            None,
        ),
        _ => return Err(PageError::NotFound),
    };
    let answer = web
        .api()
        .send(visit.caller(), method, path, body.as_ref())
        .await;
    after_write(&web, &visit, org, id, answer.map(|_| ())).await
}

/// Deletes the task (soft: its executions, outputs and history stay
/// readable) and goes back to its project.
pub async fn delete(
    State(web): State<Web>,
    visit: Visit,
    Path((org, id)): Path<(Uuid, Uuid)>,
    Posted(_): Posted<Value>,
) -> Result<Response, PageError> {
    let task: Task = read_in_org(&web, &visit, org, format!("/tasks/{id}")).await?;
    let answer = web
        .api()
        .send(visit.caller(), Method::DELETE, format!("/tasks/{id}"), None)
        .await;
    match answer {
        Ok(_) => Ok(
            Redirect::to(&format!("/o/{org}/tasks?project={}", task.project_id)).into_response(),
        ),
        Err(f) => after_write(&web, &visit, org, id, Err(f)).await,
    }
}

#[derive(Deserialize)]
pub struct ProjectForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    /// Comma- or line-separated, in order; blank keeps the default ones.
    #[serde(default, deserialize_with = "blank_is_none")]
    workflow_states: Option<String>,
    /// A checkbox: present when ticked.
    #[serde(default)]
    auto_run: Option<String>,
    #[serde(default)]
    require_review: Option<String>,
}

impl ProjectForm {
    fn body(&self) -> Value {
        let mut body = json!({
            "name": self.name.trim(),
            "description": self.description.trim(),
            "autoRun": self.auto_run.is_some(),
            "requireReview": self.require_review.is_some(),
        });
        if let Some(states) = &self.workflow_states {
            let states: Vec<&str> = states
                .split([',', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            body["workflowStates"] = json!(states);
        }
        body
    }
}

/// Creates a project and shows its (empty) tree.
pub async fn create_project(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
    Posted(form): Posted<ProjectForm>,
) -> Result<Response, PageError> {
    let answer = web
        .api()
        .send(
            visit.caller(),
            Method::POST,
            format!("/orgs/{org}/projects"),
            Some(&form.body()),
        )
        .await;
    match answer {
        Ok(project) => {
            let id = project["id"].as_str().unwrap_or_default();
            Ok(Redirect::to(&format!("/o/{org}/tasks?project={id}")).into_response())
        }
        Err(f) if f.shown_on_page() => {
            render_tree(&web, &visit, org, (None, 1), Some(f.message), f.status).await
        }
        Err(f) => Err(f.into()),
    }
}

/// Changes a project's name, description, workflow and auto-run.
pub async fn update_project(
    State(web): State<Web>,
    visit: Visit,
    Path((org, id)): Path<(Uuid, Uuid)>,
    Posted(form): Posted<ProjectForm>,
) -> Result<Response, PageError> {
    read_in_org::<Project>(&web, &visit, org, format!("/projects/{id}")).await?;
    let answer = web
        .api()
        .send(
            visit.caller(),
            Method::PATCH,
            format!("/projects/{id}"),
            Some(&form.body()),
        )
        .await;
    match answer {
        Ok(_) => Ok(Redirect::to(&format!("/o/{org}/tasks?project={id}")).into_response()),
        Err(f) if f.shown_on_page() => {
            render_tree(&web, &visit, org, (Some(id), 1), Some(f.message), f.status).await
        }
        Err(f) => Err(f.into()),
    }
}

#[derive(Deserialize)]
pub struct RollbackForm {
    version: i64,
}

pub async fn rollback(
    State(web): State<Web>,
    visit: Visit,
    Path((org, id)): Path<(Uuid, Uuid)>,
    Posted(form): Posted<RollbackForm>,
) -> Result<Response, PageError> {
    owned(&web, &visit, org, id).await?;
    let answer = web
        .api()
        .send(
            visit.caller(),
            Method::POST,
            format!("/tasks/{id}/rollback/{}", form.version),
            None,
        )
        .await;
    after_write(&web, &visit, org, id, answer.map(|_| ())).await
}

/// Back to the task, or the task with what went wrong.
async fn after_write(
    web: &Web,
    visit: &Visit,
    org: Uuid,
    id: Uuid,
    answer: Result<(), crate::api::ApiFailure>,
) -> Result<Response, PageError> {
    match answer {
        Ok(()) => Ok(Redirect::to(&format!("/o/{org}/tasks/{id}")).into_response()),
        Err(f) if f.shown_on_page() => {
            render_task(web, visit, org, id, Some(f.message), f.status).await
        }
        Err(f) => Err(f.into()),
    }
}

async fn owned(web: &Web, visit: &Visit, org: Uuid, id: Uuid) -> Result<(), PageError> {
    read_in_org::<Task>(web, visit, org, format!("/tasks/{id}")).await?;
    Ok(())
}
