using CloudSoup.Control.Methods;

namespace CloudSoup.Engine.Merging;

/// <summary>
/// A method whose output is non-finite wherever a used input is (e.g. a weighted sum: w·NaN is NaN and w·±inf is
/// ±inf, and adding finite values or dividing by a non-zero sum never makes either finite again). For such a method
/// a finite output proves its inputs finite, so the executor checks the output first and reads the inputs for NaN
/// and ±inf only when the output has some: one pass over the output instead of one over every input.
/// </summary>
public interface INonFinitePropagating
{
    /// <summary>True when, with these parameters, every input of the tensor contributes to every output element.</summary>
    bool EveryInputReachesTheOutput(IReadOnlyList<ResolvedParameters> perModel, ResolvedParameters global);
}

/// <summary>
/// A method whose fused kernel may read every input element and vouch for them all being finite
/// (OutputBuffers.VouchInputsFinite). For such a method the executor counts the inputs' NaN and ±inf after the merge,
/// and only when the kernel did not vouch: not one extra pass over every input of every tensor. The count, the report
/// and nonfinite: refuse's error are the same as when counted first.
/// </summary>
public interface IVouchesForInputs;
