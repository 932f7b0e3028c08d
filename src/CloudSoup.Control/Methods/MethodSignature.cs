// What the control plane knows of a merge method: its name, what it takes and which recipes it accepts. The
// compute lives in the data plane (CloudSoup.Engine/Merging/Methods), one class per method, each pointing at
// its signature here, so intake refuses a bad recipe exactly as the worker would, without TorchSharp.
using CloudSoup.Control.Errors;
using CloudSoup.Control.Recipes;

namespace CloudSoup.Control.Methods;

public class MethodSignature
{
    public required string Name { get; init; }
    public required string Description { get; init; }
    public required BaseModelUse BaseModel { get; init; }
    public int MinModels { get; init; } = 2;
    public IReadOnlyList<ParameterSpec> Parameters { get; init; } = [];

    /// <summary>How many models besides the base the method merges, when it is bounded (e.g. slerp: exactly 1).</summary>
    public (int Min, int Max)? OthersBesidesBase { get; init; }

    /// <summary>A job-level strategy that evaluates candidates on held-out data (the soups): needs an evaluation section.</summary>
    public bool NeedsEvaluation { get; init; }

    /// <summary>
    /// Recipe-level checks the generic ones (base model, counts, required parameters) cannot express.
    /// Throws <c>CloudSoupException.Recipe</c> naming the field.
    /// </summary>
    public virtual void ValidateRecipe(Recipe recipe)
    {
        if (OthersBesidesBase is var (min, max))
        {
            int n = Others(recipe).Count;
            if (n < min || n > max)
            {
                string want = min == max ? $"exactly {min}" : max == int.MaxValue ? $"at least {min}" : $"{min} to {max}";
                throw CloudSoupException.Recipe("models", $"merge method '{Name}' needs {want} model{(min == 1 && max == 1 ? "" : "s")} besides the base_model, the recipe has {n}");
            }
        }
    }

    /// <summary>
    /// Checks a combination of one model's resolved values for one tensor (e.g. della's density ± epsilon);
    /// returns (parameter name, reason) when it is impossible. Runs in the planner, before any tensor is read.
    /// </summary>
    public virtual (string Parameter, string Reason)? CheckResolved(ResolvedParameters global, ResolvedParameters perModel) => null;

    /// <summary>The models other than the base, in recipe order.</summary>
    public static IReadOnlyList<string> Others(Recipe recipe) =>
        recipe.Models.Select(m => m.Model).Where(m => m != recipe.BaseModel).ToList();

    /// <summary>Checkpoints named by Reference parameters (e.g. each model's fisher), read beside the models.</summary>
    public IReadOnlyList<string> AuxiliaryReferences(Recipe recipe)
    {
        var names = Parameters.Where(p => p.Kind == ParameterKind.Reference).Select(p => p.Name).ToHashSet();
        var settings = recipe.ParameterBlocks.SelectMany(b => b.Settings).Where(kv => names.Contains(kv.Key)).Select(kv => kv.Value);
        return settings.SelectMany(Texts).Distinct().ToList();
        static IEnumerable<string> Texts(ParameterSetting s) => s switch
        {
            ScalarSetting { Value.Text: string t } => [t],
            FilterSetting f => f.Entries.SelectMany(e => Texts(e.Value)),
            StepSetting st => st.Steps.Where(v => v.Text != null).Select(v => v.Text!),
            _ => [],
        };
    }

    /// <summary>A global parameter's value for a job-level method (plain scalars), or its default.</summary>
    public double Number(Recipe recipe, string name) =>
        recipe.Parameters.TryGetValue(name, out var s) && s.Evaluate("", LayerPosition.None) is { Number: double d } ? d : Convert.ToDouble(Parameters.First(p => p.Name == name).Default, System.Globalization.CultureInfo.InvariantCulture);

    public bool Bool(Recipe recipe, string name) =>
        recipe.Parameters.TryGetValue(name, out var s) && s.Evaluate("", LayerPosition.None) is { Bool: bool b } ? b : (bool)Parameters.First(p => p.Name == name).Default!;

    public override string ToString() => Name;
}
