namespace CloudSoup.Engine.Jobs;

/// <summary>
/// A whole-model decision made once for a split job (IWholeModelPrepass: ties with topk_scope: model, agreement with
/// granularity: model; docs/fanout.md), part of its <see cref="FirstStage"/>.
/// </summary>
/// <param name="Method">The method that decided (checked when a part applies it).</param>
/// <param name="Decision">The method's own JSON (IWholeModelPrepass.SaveDecision).</param>
/// <param name="Note">The report's line about the decision.</param>
public sealed record PrepassDecision(string Method, string Decision, string Note);
