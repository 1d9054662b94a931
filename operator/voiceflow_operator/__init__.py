"""The VoiceFlow Kopf operator: reconciles DiarizationModel resources into their children.

Layout: `spec` (typed, defaulted view of a resource), `builders` (pure manifest builders),
`reconcile` (the pure decision: what to create/patch/delete and the next status), `canary` and
`conditions` (pure helpers), `kube` (a small async API client), `handlers` (thin Kopf shells),
`rbac` (what the operator touches, for the Helm chart), `cli` (`voiceflow operator`).
"""

from voiceflow_operator.rbac import rbac_rules

__all__ = ["rbac_rules"]
