"""The SDK's declaration rollup per interface level, as api-extractor would write it."""

from __future__ import annotations

from sdkmirror.devtools.sample.releases import PROTOCOL_NAME, TOML_NAME, VENDOR_TYPES_NAME


def client_methods(api: int) -> dict[str, str]:
    """KimiClient's methods as declared at `api`: name -> declaration (multi-line for some)."""
    methods = {
        "connect": "connect(): Promise<void>;",
        "close": "close(): Promise<void>;",
        "newSession": "newSession(model?: string): Promise<SessionId>;",
        "resumeSession": "resumeSession(id: SessionId): Promise<SessionId>;",
        "listSessions": "listSessions(cursor?: string): Promise<Paginated<SessionId>>;",
        "listModels": "listModels(): Promise<ModelInfo[]>;",
        "prompt": "prompt(session: SessionId, input: PromptInput): AsyncIterable<TurnEvent>;",
        "steer": (
            "steer(session: SessionId, instruction: string, options?: SteerOptions): Promise<void>;"
        ),
        "cancel": "cancel(session: SessionId): Promise<void>;",
        "approve": "approve(request: ApprovalRequest, decision: ApprovalDecision): Promise<void>;",
        "registerTool": "registerTool(handler: ToolHandler): () => void;",
        "on": (
            "on<E extends keyof ClientEvents>(\n"
            "    event: E,\n"
            "    listener: (payload: ClientEvents[E]) => void,\n"
            "): () => void;"
        ),
        "request": (
            "request<TResult, TParams extends Record<string, unknown> = "
            "Record<string, unknown>>(\n"
            "    method: string,\n"
            "    params?: TParams,\n"
            "): Promise<TResult>;"
        ),
        "loadConfig": "loadConfig(text: string): TomlTable;",
    }
    if api < 1:
        del methods["steer"]
    else:
        methods["cancel"] = "cancel(session: SessionId, reason?: string): Promise<void>;"
    if api >= 2:
        del methods["resumeSession"]
        methods["listModels"] = "listModels(): Promise<Paginated<ModelInfo>>;"
        methods["approve"] = (
            "approve(\n"
            "    request: ApprovalRequest,\n"
            "    decision: ApprovalDecision,\n"
            "    reason: string,\n"
            "): Promise<void>;"
        )
    return methods


def declarations(api: int) -> str:
    """The SDK's declaration rollup at `api`, as api-extractor would write it."""
    methods = "\n".join(
        "    " + decl.replace("\n", "\n    ") for decl in client_methods(api).values()
    )
    prompt_input = (
        "string | {\n    text: string;\n    attachments?: string[];\n}"
        if api < 2
        else "{\n    text: string;\n    attachments?: string[];\n}"
    )
    # api 1, additive only: `?: T | undefined` becomes `?: T`, an internal alias loses its `_2`.
    # api 2, breaking: a new required method on an interface users implement, a new required
    # property on an input type, a setter removed, a writable field turned into a getter.
    description = "    describe(): string;\n" if api >= 2 else ""
    base_url = "string | undefined" if api < 1 else "string"
    workspace = "    workspace: string;\n" if api >= 2 else ""
    payload = "TurnPayload_2" if api < 1 else "TurnPayload"
    accessors = (
        "    get model(): string;\n    set model(value: string);\n    timeoutMs: number;\n"
        if api < 2
        else "    get model(): string;\n    get timeoutMs(): number;\n"
    )
    steer_options = (
        "/** How a steering instruction joins the running turn. */\n"
        "export interface SteerOptions {\n"
        '    priority?: "now" | "next-turn";\n'
        "}\n\n"
        if api >= 1
        else ""
    )
    url_overload = (
        "export declare function createClient(url: string, options?: TransportOptions): "
        "KimiClient;\n"
        if api >= 1
        else ""
    )
    legacy = (
        "/** @deprecated Use {@link KimiClient.prompt}. */\n"
        "export declare function legacyPrompt(client: KimiClient, text: string): "
        "Promise<string>;\n\n"
        if api < 2
        else ""
    )
    is_turn_event = (
        "export declare function isTurnEvent<T = unknown>(value: unknown): "
        "value is TurnEvent<T>;\n\n"
        if api >= 1
        else ""
    )
    return f"""import type {{ SessionId }} from "{PROTOCOL_NAME}";
import type {{ ModelInfo, Paginated }} from "{PROTOCOL_NAME}";
import type {{ ApprovalDecision, ApprovalRequest, TurnEvent }} from "{PROTOCOL_NAME}";
import type {{ EventLog, ToolInputDisplay, ToolKind, sessionId }} from "{PROTOCOL_NAME}";
import {{ ToolInputDisplaySchema }} from "{PROTOCOL_NAME}";
import type {{ Transport, TransportOptions }} from "{VENDOR_TYPES_NAME}";
import type {{ TomlTable }} from "{TOML_NAME}";

/** How the client reaches the service. */
export interface ClientOptions {{
    model?: string;
    baseUrl?: {base_url};
    transport?: Transport;
{workspace}}}

/** A tool the agent may call; the embedder implements it. */
export interface ToolHandler {{
    name: string;
    kind?: ToolKind;
{description}    run(input: unknown): Promise<unknown>;
}}

{steer_options}export type PromptInput = {prompt_input};

type {payload} = Record<string, unknown>;

export interface ClientEvents {{
    turn: TurnEvent<{payload}>;
    approval: ApprovalRequest;
    closed: {{
        code: number;
    }};
}}

type StreamMode = "text" | "events";

interface RetryPolicy {{
    attempts: number;
    backoffMs?: number;
}}

/** A connection to Kimi Code; one per process is enough. */
export declare class KimiClient {{
    readonly options: ClientOptions;
    readonly log: EventLog<TurnEvent>;
    readonly makeSessionId: typeof sessionId;
    constructor(options?: ClientOptions);
{accessors}    display(input: ToolInputDisplay): string;
{methods}
}}

export declare function createClient(options?: ClientOptions): KimiClient;
export declare function createClient(transport: Transport, options?: ClientOptions): KimiClient;
{url_overload}
{legacy}{is_turn_event}export declare const VERSION: string;

declare function parseConfig(text: string): TomlTable;

export {{ parseConfig as readConfig, ToolInputDisplaySchema }};
export type {{ RetryPolicy, StreamMode, ToolInputDisplay }};
export default createClient;
"""
