using CloudSoup.Engine.Alignment;

namespace CloudSoup.Engine.Reports;

/// <summary>Loss/accuracy along θ(λ) = (1−λ)θ_ref + λθ_model, with the model as trained and after alignment.</summary>
public sealed record AlignmentPath(LossBarrierResult Naive, LossBarrierResult Aligned);

/// <param name="Objective">Weight-matching objective Σ⟨W_ref, π(W)⟩ at the identity and after every sweep (empty for the reference).</param>
/// <param name="Path">Interpolation curves against the reference (only when the job has an evaluation section).</param>
public sealed record AlignedModel(string Model, bool IsReference, IReadOnlyList<double> Objective, int Sweeps, int UnitsMoved, AlignmentPath? Path);

/// <summary>report.json's "alignment" section: what was aligned to what, how, and what it did to the barrier.</summary>
public sealed record AlignmentReport(string Method, string Spec, string Reference, IReadOnlyDictionary<string, int> Permutations,
    double Seconds, IReadOnlyList<AlignedModel> Models, IReadOnlyList<string> Warnings);
