using CloudSoup.Control.Errors;
using CloudSoup.Control.Recipes;
using CloudSoup.Control.Storage;
using CloudSoup.Control.Tensors;
using CloudSoup.Engine.ModelFiles;
using CloudSoup.Engine.Storage;

namespace CloudSoup.Engine.Jobs.Steps;

/// <summary>
/// Always, after planning: the Hugging Face files that make the merged weights a loadable model folder, as mergekit
/// writes them (mergekit/merge.py): config.json from the base (or first) model with the layer count of a sliced merge
/// and the output dtype; generation_config.json and processor files from the same model; the tokenizer's files from
/// tokenizer_source (else the same model), with the recipe's chat_template. It runs before the merge so a tokenizer
/// whose vocabulary the models do not share fails the job before any tensor is read; the files are staged in the sink
/// and committed with the weights. Side files a source does not have (a lone .safetensors has none) are not written,
/// and the report says so.
/// </summary>
public sealed class ModelFilesStep : IJobStep
{
    public string Phase => JobPhase.Planning;

    public bool AppliesTo(JobContext job) => true;

    public async Task RunAsync(JobContext job)
    {
        job.ReportProgress(Phase, 0, "config and tokenizer files");
        var recipe = job.Recipe;
        var report = new ModelFilesReport();
        var outputs = new List<(string Name, byte[] Bytes)>();

        // mergekit's donor: the base model, or the first model (mergekit/merge.py, _model_out_config and _get_donor_model).
        string donor = recipe.BaseModel ?? recipe.InputModels[0];
        string? donorFolder = ModelFolder.Of(donor);
        string tokenizerModel = recipe.TokenizerSource?.Model ?? donor;
        string? tokenizerFolder = ModelFolder.Of(tokenizerModel);
        if (donorFolder is null)
            report.Notes.Add($"'{donor}' is a single weights file, not a model folder: no config.json, generation_config.json{(tokenizerModel == donor ? " or tokenizer files" : "")} written");
        else
        {
            report.ConfigFrom = donor;
            foreach (var name in ModelFolderFiles.FromBase)
            {
                var bytes = await ModelFolder.TryReadAsync(job.Store, donorFolder, name, job.Ct).ConfigureAwait(false);
                if (bytes is null)
                {
                    if (name == ModelFolderFiles.Config) report.Notes.Add($"'{donor}' has no config.json: none written (transformers cannot load the folder without one)");
                    continue;
                }
                if (name == ModelFolderFiles.Config)
                    bytes = ModelConfig.Rewrite(bytes, ModelFolder.PathOf(donorFolder, name), recipe.Slices?.Sum(s => s.Length), OutputDType(job), report.Notes);
                outputs.Add((name, bytes));
            }
        }

        if (recipe.TokenizerSource is { } source) await CheckVocabulariesAsync(job, source, tokenizerModel, tokenizerFolder, report.Notes).ConfigureAwait(false);
        string? template = await ChatTemplateAsync(job, report).ConfigureAwait(false);
        if (tokenizerFolder is null)
        {
            if (tokenizerModel != donor) report.Notes.Add($"'{tokenizerModel}' is a single weights file, not a model folder: no tokenizer files written");
            if (template != null) report.Notes.Add("chat_template not written: there is no tokenizer_config.json to hold it");
            report.ChatTemplate = null;
        }
        else await AddTokenizerAsync(job, tokenizerModel, tokenizerFolder, template, outputs, report).ConfigureAwait(false);

        foreach (var (name, bytes) in outputs)
        {
            await job.Sink.WriteAllAsync(name, bytes, job.Ct).ConfigureAwait(false);
            report.Written.Add(name);
        }
        job.ModelFiles = report;
    }

    /// <summary>The dtype most of the written floating-point bytes have (config.json's torch_dtype), or null when nothing written is floating point.</summary>
    private static DType? OutputDType(JobContext job) =>
        job.Plan.Tensors.Where(t => DTypes.IsFloat(t.OutDType))
            .GroupBy(t => t.OutDType).OrderByDescending(g => g.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b) * DTypes.SizeOf(t.OutDType)))
            .Select(g => (DType?)g.Key).FirstOrDefault();

    private static async Task AddTokenizerAsync(JobContext job, string model, string folder, string? template, List<(string, byte[])> outputs, ModelFilesReport report)
    {
        int before = outputs.Count;
        bool hasConfig = false;
        foreach (var name in ModelFolderFiles.Tokenizer)
        {
            string path = ModelFolder.PathOf(folder, name);
            if (template != null && ChatTemplateFiles.Separate.Contains(name))
            {
                // transformers prefers these files to tokenizer_config.json's template, so copying them would undo the recipe's.
                if (await job.Store.TryGetVersionAsync(path, job.Ct).ConfigureAwait(false) != null)
                    report.Notes.Add($"{name} of '{model}' not copied: the recipe's chat_template replaces it");
                continue;
            }
            var bytes = await ModelFolder.TryReadAsync(job.Store, folder, name, job.Ct).ConfigureAwait(false);
            if (bytes is null) continue;
            if (name == ModelFolderFiles.TokenizerConfig)
            {
                hasConfig = true;
                if (template != null) bytes = ChatTemplateFiles.SetInto(bytes, path, template);
            }
            outputs.Add((name, bytes));
        }
        if (outputs.Count == before) report.Notes.Add($"'{model}' has no tokenizer files ({string.Join(", ", ModelFolderFiles.Tokenizer)}): none written");
        else report.TokenizerFrom = model;
        if (template != null && !hasConfig)
        {
            // mergekit warns and goes on (merge.py: "Chat template specified but no tokenizer found").
            report.Notes.Add($"chat_template not written: '{model}' has no tokenizer_config.json to hold it");
            report.ChatTemplate = null;
        }
    }

    /// <summary>The template to write: the recipe's text, or for auto the one most models have (null: keep the tokenizer's own).</summary>
    private static async Task<string?> ChatTemplateAsync(JobContext job, ModelFilesReport report)
    {
        var setting = job.Recipe.ChatTemplate;
        if (setting is null) return null;
        if (setting != ChatTemplate.Auto)
        {
            report.ChatTemplate = "recipe";
            return setting;
        }
        var found = new List<(string Model, string? Template)>();
        foreach (var model in job.Recipe.InputModels)
            found.Add((model, ModelFolder.Of(model) is { } folder ? await ChatTemplateFiles.ReadAsync(job.Store, folder, job.Ct).ConfigureAwait(false) : null));
        var chosen = ChatTemplateFiles.MostCommon(found.Select(f => f.Template));
        if (chosen is null)
        {
            report.Notes.Add("chat_template: auto found no chat template in the models; the tokenizer's own is kept");
            return null;
        }
        report.ChatTemplate = "auto: the template of " + string.Join(", ", found.Where(f => f.Template?.Trim() == chosen).Select(f => $"'{f.Model}'"));
        return chosen;
    }

    /// <summary>
    /// With a tokenizer source, every model must share its vocabulary: mergekit would re-map each model's embedding rows
    /// to it (mergekit/tokenizer/build.py), CloudSoup merges the rows as they are. A model without tokenizer files is
    /// assumed to share it, as mergekit assumes.
    /// </summary>
    private static async Task CheckVocabulariesAsync(JobContext job, TokenizerSource source, string model, string? folder, List<string> notes)
    {
        CloudSoupException Refuse(string why) => new(ErrorKind.IncompatibleModels, $"{source.Field}: {why}", source.Field);
        if (folder is null) throw Refuse($"'{model}' is a single weights file with no tokenizer beside it; name a model folder");
        var vocabulary = await TokenizerVocabulary.ReadAsync(job.Store, folder, job.Ct).ConfigureAwait(false)
            ?? throw Refuse($"'{model}' has no tokenizer (tokenizer.json, vocab.json, vocab.txt or tokenizer.model)");
        foreach (var other in job.Recipe.InputModels.Where(m => m != model))
        {
            var theirs = ModelFolder.Of(other) is { } f ? await TokenizerVocabulary.ReadAsync(job.Store, f, job.Ct).ConfigureAwait(false) : null;
            if (theirs is null)
            {
                notes.Add($"'{other}' has no tokenizer files; assumed to share the vocabulary of '{model}'");
                continue;
            }
            if (theirs.Kind != vocabulary.Kind)
                throw Refuse($"cannot compare the vocabularies of '{model}' ({vocabulary.From}) and '{other}' ({theirs.From}); give both a tokenizer.json, or leave {source.Field} out to copy the tokenizer unchecked");
            if (!theirs.SameAs(vocabulary))
                throw Refuse($"'{other}' has a different vocabulary ({Describe(theirs)}) from '{model}' ({Describe(vocabulary)}); CloudSoup does not re-map embedding rows to another vocabulary (docs/methods.md), so every model must share the tokenizer's");
        }
    }

    private static string Describe(TokenizerVocabulary v) =>
        v.Kind == TokenizerVocabulary.TokenIds ? $"{v.Count} tokens in {v.From}" : $"its {v.From}{(v.Count > 0 ? $" and {v.Count} added tokens" : "")}";
}
