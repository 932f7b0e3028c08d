using CloudSoup.Control.Methods;
using TorchSharp;

namespace CloudSoup.Engine.Merging;

/// <summary>Everything a method sees for one output tensor. Tensors are in the compute dtype.</summary>
public sealed class TensorMergeInput
{
    public required string TensorName { get; init; }

    /// <summary>The inputs in recipe order (the base model, when it is listed among models, included).</summary>
    public required IReadOnlyList<torch.Tensor> Tensors { get; init; }

    /// <summary>Model references, parallel to <see cref="Tensors"/>.</summary>
    public required IReadOnlyList<string> ModelIds { get; init; }

    /// <summary>Per-model parameters, parallel to <see cref="Tensors"/>.</summary>
    public required IReadOnlyList<ResolvedParameters> PerModel { get; init; }

    public required ResolvedParameters Global { get; init; }

    /// <summary>The base model's tensor, when the recipe names one.</summary>
    public torch.Tensor? Base { get; init; }

    /// <summary>Index of the base model in <see cref="Tensors"/>, or -1 when it is not listed among them.</summary>
    public int BaseIndex { get; init; } = -1;

    /// <summary>Seed for this tensor: recipe seed mixed with the tensor name (see <see cref="Seeds"/>).</summary>
    public long Seed { get; init; }

    /// <summary>
    /// Auxiliary tensors per model (parallel to <see cref="Tensors"/>), keyed by the name of the Reference parameter
    /// that named their checkpoint (e.g. "fisher"); the executor loads this tensor's name from that checkpoint.
    /// </summary>
    public IReadOnlyList<IReadOnlyDictionary<string, torch.Tensor>> Auxiliary { get; init; } = [];

    /// <summary>Auxiliary tensors named by global Reference parameters (e.g. "base_fisher").</summary>
    public IReadOnlyDictionary<string, torch.Tensor> GlobalAuxiliary { get; init; } = new Dictionary<string, torch.Tensor>();

    /// <summary>Where a method reports what it decided for this tensor (e.g. which models it accepted); goes to the report.</summary>
    public Action<string>? Note { get; init; }

    /// <summary>
    /// Where a method may take the zeroed tensor it accumulates its output in (reused memory of an output already
    /// written; see <see cref="Merging.OutputBuffers"/>); null outside a merge that writes its outputs.
    /// </summary>
    public OutputBuffers? OutputBuffers { get; init; }

    /// <summary>
    /// Where a kernel may rent the scratch blocks it needs for this tensor, kept for the merge's next tensor (see
    /// <see cref="Merging.ScratchBuffers"/>); null outside a merge.
    /// </summary>
    public ScratchBuffers? Scratch { get; init; }

    public torch.Tensor Aux(int model, string name) =>
        model < Auxiliary.Count && Auxiliary[model].TryGetValue(name, out var t) ? t
            : throw new InvalidOperationException($"no auxiliary tensor '{name}' for model {model} of '{TensorName}'");
}
