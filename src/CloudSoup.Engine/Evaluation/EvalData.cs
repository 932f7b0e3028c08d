using CloudSoup.Control.Errors;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Storage;
using TorchSharp;

namespace CloudSoup.Engine.Evaluation;

/// <summary>An evaluation split: a safetensors file holding "inputs" (float, [N, ...]) and "labels" (integer, [N]).</summary>
public sealed class EvalData : IDisposable
{
    public EvalData(torch.Tensor inputs, torch.Tensor labels, string source)
    {
        Inputs = inputs;
        Labels = labels;
        Source = source;
    }

    public torch.Tensor Inputs { get; }
    public torch.Tensor Labels { get; }
    public string Source { get; }
    public long Count => Labels.shape[0];

    public static async Task<EvalData> LoadAsync(ICheckpointStore store, string reference, CancellationToken ct)
    {
        await using var file = await Checkpoint.OpenAsync(store, reference, ct).ConfigureAwait(false);
        foreach (var name in new[] { "inputs", "labels" })
            if (!file.Contains(name))
                throw CloudSoupException.Checkpoint(reference, $"evaluation data must hold tensors 'inputs' and 'labels'; {SafeText.Name(name)} is missing (it has: {string.Join(", ", file.TensorNames.Take(5).Select(n => SafeText.Name(n)))})");
        var inputsEntry = file.Entry("inputs");
        var labelsEntry = file.Entry("labels");
        if (!DTypes.IsFloat(inputsEntry.DType))
            throw CloudSoupException.Checkpoint(reference, $"'inputs' must be a float tensor, not {inputsEntry.DType}");
        if (DTypes.IsFloat(labelsEntry.DType) || labelsEntry.DType == DType.BOOL || labelsEntry.Shape.Length != 1)
            throw CloudSoupException.Checkpoint(reference, $"'labels' must be a 1-D integer tensor (got {labelsEntry.DType} {SafetensorsHeader.Fmt(labelsEntry.Shape)})");
        if (inputsEntry.Shape.Length == 0 || inputsEntry.Shape[0] != labelsEntry.Shape[0])
            throw CloudSoupException.Checkpoint(reference, $"'inputs' has {(inputsEntry.Shape.Length == 0 ? 0 : inputsEntry.Shape[0])} examples but 'labels' has {labelsEntry.Shape[0]}");
        if (labelsEntry.Shape[0] == 0)
            throw CloudSoupException.Checkpoint(reference, "evaluation data holds no examples");
        using var rawInputs = await file.ReadTensorAsync("inputs", ct).ConfigureAwait(false);
        using var rawLabels = await file.ReadTensorAsync("labels", ct).ConfigureAwait(false);
        var labels = rawLabels.to_type(torch.ScalarType.Int64);
        if (labels.min().item<long>() < 0)
        {
            labels.Dispose();
            throw CloudSoupException.Checkpoint(reference, "'labels' holds negative class indices");
        }
        return new EvalData(rawInputs.to_type(torch.ScalarType.Float32), labels, reference);
    }

    public void Dispose()
    {
        Inputs.Dispose();
        Labels.Dispose();
    }
}
