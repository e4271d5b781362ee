# ruff: noqa: E501 (patterns read best unbroken)
"""Prompt-injection heuristics: signals with weights, summed into a score in [0, 1].

Read over the keyword skeleton of folded text (lower case, confusables mapped) with
leetspeak digits read as letters, so ``1gn0re prev1ous 1nstruct1ons`` and
``ıgnоre`` (Cyrillic о) score like the plain phrase. Signals:

- ``instruction_override``: an override verb (ignore, disregard, forget, bypass, ...)
  before a reference to earlier or system instructions, rules or prompts;
- ``role_hijack``: "you are now ...", DAN / developer mode / jailbreak personas, "act
  as ... without restrictions", "pretend you have no rules";
- ``prompt_extraction``: asking for the system prompt, hidden or initial instructions,
  or "everything above";
- ``template_tokens``: chat-template and delimiter tokens (``<|im_start|>``,
  ``[INST]``, ``<<SYS>>``, ``</system>``, fake ``system:`` / ``assistant:`` turns);
- ``new_instructions``: "new instructions:", "important: from now on ...", "system
  override";
- ``exfiltration``: markdown images that carry data (or a placeholder for it) to a
  remote query string;
- ``reader_address``: text addressed to the model that reads it ("note for the AI",
  "assistants processing this page", "if you are an LLM", "before you answer,
  first");
- ``policy_markup``: settings, markup or "policy updates" that switch safety off
  (``content_filter: off``, "guardrails are suspended");
- ``refusal_suppression``: instructions that forbid refusing ("never say I'm
  sorry", "no disclaimers", "start every answer with Sure");
- ``encoded_payload``: text hidden by an encoding (base64, base32, hex in either
  case, URL or HTML escapes, ROT13, reversed, Unicode tag characters) that itself
  scores (`aegisflow.policy.decode`: decoded once, at most 64 KiB);
- ``hidden_text``: Unicode tag characters (invisible ASCII) in the text.

Each signal counts once per text (its strongest match). The score is the sum of the
weights of the signals found, capped at 1; in a text longer than `LONG_TEXT`
characters only signals within `WINDOW` characters of each other add up, so a long
document does not pile scattered weak words into a block. ``threshold`` (default
0.5) decides.
"""

import re

from aegisflow.policy.decode import hidden
from aegisflow.policy.normalize import LEET
from aegisflow.policy.normalize import WORD_BREAKS

# -- rules ---------------------------------------------------------------------------
# PERF: a rule is a small pattern matched *at* each occurrence of its trigger
# substring, and only when its gate words are in the text's word set (one set
# lookup each): a text without a rule's words costs nothing, and one with them costs
# a find and an anchored match per occurrence, never a scan of the whole text.

_OBJECTS = (
    r'(?:instructions?|prompts?|rules?|directives?|directions?|guidelines?|guidance'
    r'|commands?|context|constraints?|restrictions?|policies|policy|programming'
    r'|orders?|messages?|conversation|text|content|input'
    r"|you(?:'ve)? (?:were|was|have been) told|(?:that|what) (?:was|were) said)\b"
)
_OVERRIDE_TAIL = (
    r'\s+(?:(?:all|any|every|each|the|your|my|these|those|this|of|that|everything|what)\s+){0,3}'
    r'(?:(?:previous|prior|above|earlier|preceding|initial|original|old|former|system'
    r'|developer|given|existing|current|safety|default|last|first)\s+){0,2}'
    r'(?:(?:and|or)\s+(?:\w+\s+){0,2})?' + _OBJECTS
)
# what the model was told: its own prompt, instructions or setup
_EXTRACT_OWN = (
    r'(?:your|the|its|my) (?:\w+ )?(?:system prompt|system message|initial prompt|initial instructions)'
    r'|(?:your|the) (?:hidden|secret|original|internal|developer|initial|first) (?:prompt|instructions?|rules|message|text|directives?|guidelines)'
    r'|instructions? you (?:were given|received)|your (?:instructions|prompt|rules|guidelines|directives|configuration)'
    r'|pre-?prompt|a copy of (?:the|your) (?:full|entire|whole|complete) (?:system |initial |original )?prompt'
    r'|(?:the|your) (?:full|entire|whole|complete) (?:system |initial |original )?prompt (?:text|so far|above)|your initiali[sz]ation'
    r'|(?:sentences|instructions|commands|words|text) (?:you (?:received|saw|were given|have (?:seen|received|come across))'
    r'|(?:in|from) (?:the|this|our|your) (?:context(?=\s*(?:[.,;:!?\n]|and\b|$))|previous command|previous task|last task|instructions?\b))'
    r'|everything in (?:this|your) (?:prompt|context|instructions?)'
)
# what came before in the text: a user's own pasted text is ordinary to translate or
# summarise, so those verbs read only the model's own setup (`_EXTRACT_OWN`)
_EXTRACT_NEAR = (
    r'|(?:your|the) (?:previous|above|prior) (?:prompt|instructions?|rules|message|text|directives?|guidelines)'
    r'|instructions? above|everything (?:above|before)|(?:the )?(?:text|words) (?:above|before this)|prompt above'
    r'|all (?:the )?text before ["\'“]'
)
_EXTRACT_TAIL = r'\b[^.\n?]{0,40}\b(?:' + _EXTRACT_OWN + _EXTRACT_NEAR + ')'
_EXTRACT_OWN_TAIL = r'\b[^.\n?]{0,40}\b(?:' + _EXTRACT_OWN + ')'
_SUMMARY_VERBS = ('translate', 'summarize', 'summarise')
_OVERRIDE_VERBS = (
    'ignore',
    'disregard',
    'forget',
    'bypass',
    'skip',
    'override',
    'overrule',
    'abandon',
    'drop',
    'discard',
    'neglect',
)
_EXTRACT_VERBS = (
    'reveal',
    'print',
    'show',
    'display',
    'repeat',
    'output',
    'tell',
    'give',
    'share',
    'list',
    'dump',
    'leak',
    'spell',
    'recite',
    'recount',
    'echo',
    'return',
    'paste',
    'copy',
)
_AS_VERBS = (
    'act',
    'acting',
    'behave',
    'behaving',
    'respond',
    'responding',
    'answer',
    'answering',
    'reply',
    'replying',
)
_MODE_VERBS = (
    'switch',
    'switching',
    'enter',
    'entering',
    'enable',
    'enabling',
    'enabled',
    'activate',
    'activating',
    'activated',
    'unlock',
    'unlocked',
)
_TOKENS = (
    'im_start',
    'im_end',
    'system',
    'user',
    'assistant',
    'endoftext',
    'begin_of_text',
    'start_header_id',
    'end_header_id',
    'eot_id',
)
_ROLE_ADJ = r'(?:unfiltered|uncensored|unrestricted|no[- ]limits?)\s+(?:ai|assistant|mode|model|version|chatbot)\b'

_EVADE_POLICY = (
    r'\b(?:ignore|ignores|ignoring|bypass|violate|violates|break|breaks|against|free (?:of|from)'
    r'|bound by|disregard|disregards|follow|obey|without|outside)\b[^.\n]{0,30}\bpolic(?:y|ies)\b'
)

# (signal, weight, gate words (all must be in the text), trigger substring, pattern
# matched at the trigger[, how far before the trigger the match may start])
_RULES = (
    [('instruction_override', 0.6, (v,), v, v + _OVERRIDE_TAIL) for v in _OVERRIDE_VERBS]
    + [
        ('instruction_override', 0.6, ('do',), 'do not ', r'do not (?:follow|obey|listen to)' + _OVERRIDE_TAIL),
        ('instruction_override', 0.6, ("don't",), "don't ", r"don't (?:follow|obey)" + _OVERRIDE_TAIL),
        ('instruction_override', 0.6, ('dont',), 'dont ', r'dont (?:follow|obey)' + _OVERRIDE_TAIL),
        ('instruction_override', 0.6, ('following',), 'stop following', 'stop following' + _OVERRIDE_TAIL),
        ('instruction_override', 0.6, ('aside',), 'set aside', 'set aside' + _OVERRIDE_TAIL),
        ('instruction_override', 0.6, ('throw',), 'throw out', 'throw out' + _OVERRIDE_TAIL),
        ('instruction_override', 0.6, ('attention',), 'pay no attention', 'pay no attention to' + _OVERRIDE_TAIL),
    ]
    + [('instruction_override', 0.5, (v,), v, v + r'\s+(?:\w+\s+){0,4}(?:above|before|previously|so far|prior)\b') for v in ('ignore', 'disregard', 'forget')]
    + [
        ('instruction_override', 0.5, ('forget',), 'forget', r'forget (?:everything|all)\b'),
        ('instruction_override', 0.5, ('now',), 'from now on', r'from now on,? (?:ignore|disregard)\b'),
        ('instruction_override', 0.5, ('henceforth',), 'henceforth', r'henceforth,? (?:ignore|disregard)\b'),
        # a new role alone is how people ask for a tutor or a pirate: weak
        ('instruction_override', 0.3, ('now',), 'from now on', r'from now on,? (?:you|your)\b'),
        ('instruction_override', 0.3, ('henceforth',), 'henceforth', r'henceforth,? (?:you|your)\b'),
        ('role_hijack', 0.3, ('you',), 'you are ', r'you are (?:now|no longer|going to be|about to)\b'),
        ('role_hijack', 0.5, ('you',), 'you are ', r'you are (?:now )?free (?:from|of)\b'),
        ('role_hijack', 0.25, ('pretend',), 'pretend', r"pretend (?:to be|you are|that you|you're)\b"),
        ('role_hijack', 0.5, ('pretend',), 'pretend', r"pretend (?:to be|you are|that you|you're)\b[^.\n]{0,60}\b(?:no|without|unrestricted|unfiltered|uncensored|evil|dan|jailbr\w*|free from)\b"),
        ('role_hijack', 0.5, ('anything',), 'do anything now', 'do anything now'),
        ('role_hijack', 0.3, ('developer', 'mode'), 'developer mode', 'developer mode'),
        ('role_hijack', 0.3, ('god', 'mode'), 'god mode', 'god mode'),
        ('role_hijack', 0.5, ('without',), 'without ', r'without (?:any )?(?:restrictions|filters|limitations|censorship|ethical guidelines|rules)\b'),
        ('role_hijack', 0.25, ('character',), 'stay in character', 'stay in character'),
        ('role_hijack', 0.25, ('character',), 'break character', 'break character'),
        ('role_hijack', 0.5, ('character',), 'character', r'character\b[^.\n]{0,80}\b(?:no|without|never refuses?|unfiltered|uncensored|amoral|unethical)\b'),
        ('role_hijack', 0.5, ('bound',), 'no ', r'no (?:longer )?bound by\b'),
        ('role_hijack', 0.5, ('restricted',), 'no ', r'no (?:longer )?restricted by\b'),
        ('role_hijack', 0.5, ('limited',), 'no ', r'no (?:longer )?limited by\b'),
        ('role_hijack', 0.5, ('limits',), 'no', _ROLE_ADJ),
        ('role_hijack', 0.5, ('limit',), 'no', _ROLE_ADJ),
    ]
    + [('role_hijack', 0.3, (w,), w, r'jailbr(?:oken|eak)') for w in ('jailbreak', 'jailbroken', 'jailbreaking', 'jailbreaks')]
    + [('role_hijack', 0.5, (w,), w, r'jailbr(?:oken|eak)(?:ed)? (?:mode|version|ai|assistant|chatbot|prompt is now active)\b') for w in ('jailbreak', 'jailbroken')]
    + [('role_hijack', 0.5, (w,), w, _ROLE_ADJ) for w in ('unfiltered', 'uncensored', 'unrestricted')]
    + [('role_hijack', 0.5, (w,), w, w + r'\b[^.\n]{0,40}\b(?:do anything now|jailbr(?:oken|eak)|mode)\b') for w in ('dan', 'stan', 'dude', 'aim')]
    + [('role_hijack', 0.5, (w,), w + ' as', w + r' as (?:if you (?:are|were)|an?|my)\b[^.\n]{0,80}\b(?:without|no|free of|unfiltered|uncensored|unrestricted)\b') for w in _AS_VERBS]
    + [('role_hijack', 0.5, (w, 'mode'), w, w + r' (?:to |into |the )?(?:\w+ )?(?:developer|dan|jailbreak|god|unrestricted|unfiltered|uncensored|debug|maintenance|admin|sudo|evil|dev|chaos|opposite) mode\b') for w in _MODE_VERBS]
    + [('prompt_extraction', 0.6, (v,), v, v + _EXTRACT_TAIL) for v in _EXTRACT_VERBS]
    + [('prompt_extraction', 0.6, (v,), v, v + _EXTRACT_OWN_TAIL) for v in _SUMMARY_VERBS]
    + [
        ('prompt_extraction', 0.6, ('write',), 'write out', 'write out' + _EXTRACT_TAIL),
        ('prompt_extraction', 0.6, ('what',), 'what ', r'what (?:is|are|was|were) (?:your (?:system prompt|initial instructions|original instructions|instructions|rules|hidden)|the system prompt)'),
        ('prompt_extraction', 0.6, ('starting',), 'starting with', r'starting with ["\']?you are\b'),
        ('prompt_extraction', 0.6, ('beginning',), 'beginning with', r'beginning with ["\']?you are\b'),
    ]
    + [('template_tokens', 0.5, (w,), '<|' + w, r'<\|' + w + r'\|>') for w in _TOKENS]
    + [
        ('template_tokens', 0.5, ('inst',), '[inst]', r'\[inst\]'),
        ('template_tokens', 0.5, ('inst',), '[/inst]', r'\[/inst\]'),
        ('template_tokens', 0.5, ('sys',), '<<', r'<<\s*/?sys\s*>>'),
        ('template_tokens', 0.5, ('sys',), '<sys', r'<sys\s*>'),
        ('template_tokens', 0.5, ('sys',), '</sys', r'</sys\s*>'),
        ('template_tokens', 0.5, ('system',), '<system', r'<system\s*>'),
        ('template_tokens', 0.5, ('system',), '</system', r'</system\s*>'),
        ('template_tokens', 0.5, ('instructions',), '<instruction', r'<instructions?\s*>'),
        ('template_tokens', 0.5, ('instructions',), '</instruction', r'</instructions?\s*>'),
        ('template_tokens', 0.5, ('instruction',), '<instruction', r'<instructions?\s*>'),
        ('template_tokens', 0.5, ('instruction',), '</instruction', r'</instructions?\s*>'),
        ('template_tokens', 0.5, ('system',), '##', r'#{2,}\s*(?:system|instruction|new instructions?)\b'),
        ('template_tokens', 0.5, ('instruction',), '##', r'#{2,}\s*(?:system|instruction|new instructions?)\b'),
        ('template_tokens', 0.5, ('instructions',), '##', r'#{2,}\s*(?:system|instruction|new instructions?)\b'),
        ('template_tokens', 0.5, ('system',), '{{', r'\{\{#?system~?\}\}'),
        ('template_tokens', 0.5, ('system',), '[system]', r'\[system\]'),
        ('template_tokens', 0.5, ('system',), '(system)', r'\(system\)'),
        ('template_tokens', 0.5, ('system',), 'system instruction:', 'system instruction:'),
        # a fake turn ("system: ..."): weak alone, a colon after "system" is common
        ('fake_turn', 0.3, ('system',), 'system', r'system\s*:\s'),
        ('fake_turn', 0.3, ('assistant',), 'assistant', r'assistant\s*:\s'),
        ('new_instructions', 0.35, ('new',), 'new ', r'new (?:important )?(?:instructions?|rules?|task|directive|objective|orders?)\s*[:!\-]'),
        ('new_instructions', 0.35, (), '**', r'\*{2,}\s*new\b'),
        ('new_instructions', 0.5, ('new',), '**', r'\*{2,}\s*new (?:important )?instructions?\s*\*{2,}'),
        ('new_instructions', 0.35, ('important',), 'important', r'important(?: new)? instructions?\b'),
        ('new_instructions', 0.35, ('override',), 'system override', 'system override'),
        ('new_instructions', 0.35, ('override',), 'override', r'override (?:your|the|all|any) (?:\w+ )?(?:settings|safety|filters?|protocols?)\b'),
        ('new_instructions', 0.35, ('admin',), 'admin', r'admin (?:mode|override|access)\b'),
        ('new_instructions', 0.35, ('administrator',), 'administrator', r'administrator (?:mode|override|access)\b'),
        ('new_instructions', 0.35, ('instead',), 'instead', r'instead,? (?:you (?:must|should|will)|say|print|output|respond|write|reply)\b'),
        ('new_instructions', 0.35, ('user',), 'do not ', r'do not (?:tell|inform|mention)(?: this)? (?:to )?the user\b'),
        ('pretext', 0.5, ('instructions',), 'mistake', r'mistake when I gave you (?:your|the) instructions'),
        ('pretext', 0.5, ('forgot',), 'forgot to ', r'forgot to (?:ask|tell) you to\b'),
        ('pretext', 0.35, ('priority',), 'priority task', r'priority task\s*:'),
        ('pretext', 0.35, ('emergency',), 'emergency', r'emergency\W{0,6}\s*(?:please|you must|immediately|override)'),
        ('pretext', 0.35, ('procedure',), 'experimental procedure', r'experimental procedure\s*:'),
        ('pretext', 0.35, ('testing',), 'for testing purposes', r'for testing purposes(?: only)?\s*[:,]'),
        ('pretext', 0.5, ('testing',), 'strictly for testing', r'strictly for testing purposes\b[^.\n]{0,60}\byou must\b'),
        ('pretext', 0.5, ('exercise',), 'training exercise', r"training exercise, you(?:'ve| have) been assigned"),
        ('pretext', 0.5, ('pipeline',), 'test pipeline', r'test pipeline\b[^.\n]{0,120}\b(?:ensure to|you must|do the following)'),
        ('pretext', 0.5, ('debugging',), 'debugging error', r'debugging error\W'),
        ('pretext', 0.5, ('privileges',), 'grant ', r'grant (?:me )?(?:temporary )?(?:administrative|admin|root|elevated) (?:privileges|access|rights)'),
        ('pretext', 0.5, ('special',), 'special case', r'special case\s*:\s*if you are (?:told|asked) to'),
        ('instruction_override', 0.5, ('regardless',), 'regardless of', r'regardless of (?:any |your |the )?(?:pre-existing |previous |prior |existing |original )?(?:guidelines|rules|instructions|policies|restrictions|programming)'),
        ('instruction_override', 0.5, ('follow',), 'follow my instructions', r'follow my instructions (?:instead|regardless|no matter)'),
        ('instruction_override', 0.5, ('instead',), 'instead', r'instead,? (?:of (?:doing that|summari[sz]ing|answering)|you must|do this)'),
        ('policy_evasion', 0.5, ('policy',), 'polic', _EVADE_POLICY, 40),
        ('policy_evasion', 0.5, ('policies',), 'polic', _EVADE_POLICY, 40),
        ('policy_evasion', 0.5, ('never',), 'never ', r'never (?:refuses?|refuse to answer|says? no|denies|rejects)\b'),
        ('policy_evasion', 0.5, ('refuse',), 'not ', r'not (?:be able to )?refuse\b'),
        ('policy_evasion', 0.5, ('refuse',), "won't ", r"won't refuse\b"),
        ('policy_evasion', 0.5, ('refuse',), "can't ", r"can't refuse\b"),
        ('policy_evasion', 0.5, ('moral',), 'moral', r'(?:moral|ethical)s?\b[^.\n]{0,30}\b(?:guidelines|restrictions|limits|principles|boundaries|constraints)\b'),
        ('policy_evasion', 0.5, ('amoral',), 'amoral', 'amoral'),
        ('policy_evasion', 0.5, ('unethical',), 'unethical', r'unethical\b[^.\n]{0,40}\b(?:ai|assistant|chatbot|model|character|persona)'),
        ('policy_evasion', 0.5, ('filtered',), 'not filtered', r'not filtered'),
        ('policy_evasion', 0.5, ('censorship',), 'censorship', r'censorship\b'),
        ('policy_evasion', 0.5, ('restrictions',), 'no restrictions', r'no restrictions\b'),
        ('prompt_extraction', 0.6, ('first',), 'first ', r'first (?:sentence|line|word|paragraph)s? of (?:your|the) (?:system|initial|original|hidden)'),
        ('prompt_extraction', 0.35, ('you',), "'you are'", "'you are'"),
        ('prompt_extraction', 0.35, ('you',), '"you are"', '"you are"'),
        ('role_hijack', 0.5, ('ways',), 'answer ', r'answer (?:every|each|all) (?:question|prompt)s? in two (?:different )?ways'),
        ('prompt_extraction', 0.6, ('told',), 'what were you told', r'what were you told (?:before|at the (?:start|beginning))'),
        ('prompt_extraction', 0.6, ('instructions',), 'my instructions are', r"my instructions are\s*:?['\"]?"),
        ('prompt_extraction', 0.6, ('instructed',), 'i was instructed', r"i was instructed to"),
        ('prompt_extraction', 0.6, ('supposed',), 'not supposed to tell', r'not supposed to (?:tell|say|reveal|share)'),
        ('prompt_extraction', 0.6, ('prompt',), 'system prompt is', r'system prompt is\s*:'),
        ('prompt_extraction', 0.6, ('systemprompt',), 'systemprompt', 'systemprompt'),
        ('prompt_extraction', 0.6, ('system_prompt',), 'system_prompt', 'system_prompt'),
        ('prompt_extraction', 0.6, ('initialization',), 'initialization string', 'initialization string'),
        ('prompt_extraction', 0.3, ('prompt',), 'system prompt', 'system prompt'),
        ('prompt_extraction', 0.3, ('instructions',), 'system instructions', 'system instructions'),
        ('prompt_extraction', 0.6, ('instructions',), 'instructions', r'instructions you were given'),
        # an image whose query carries data or a placeholder for it (a bare image
        # URL with a query string is ordinary markdown)
        ('exfiltration', 0.6, (), '![', r'!\[[^\]]{0,100}\]\(\s*https?://[^)\s]{1,300}\?[^)\s]{0,300}=[^)\s]*(?:\[[a-z_ ]{2,40}\]|\{[a-z_ ]{2,40}\}|<[a-z_ ]{2,40}>|secret|conversation|prompt|password|history|api.?key|e.?mail|memory|instructions?|credentials?)[^)\s]*\)'),
        ('exfiltration', 0.6, (), '![', r'!\[[^\]]{0,100}\]\(\s*https?://[^)\s]{1,300}\?[^)\s]{0,300}=[^)\s]*\)[^\n]{0,40}\b(?:where|replace|with the|containing|fill)\b'),
    ]
    + [('new_instructions', 0.35, (w,), w + ' ', w + r' (?:task|instructions?|goal|purpose|objective) (?:is|are)\b') for w in ('real', 'true', 'actual', 'new')]
    # text addressed to the model that reads it (a document, a page, a tool result)
    + [('reader_address', 0.5, (w,), w, w + r' (?:to|for) (?:the |any |all |an? )?(?:ai|assistants?|models?|llms?|language models?|agents?|bots?|chatbots?|summari[sz]ers?|ai (?:agents?|assistants?|tools?|systems?|models?))\b(?! (?:manager|team|director|editor|professor|teacher|coach|engineer|developer|designer|librarian|researcher|staff|desk|department|group|lab)s?\b)') for w in ('note', 'message', 'instructions', 'instruction', 'reminder', 'request', 'attention')]
    + [('reader_address', 0.5, (w,), w, r'(?:ai|llms?|language models?|assistants?|agents?|models?|ai (?:agents?|assistants?|tools?|systems?)|automated (?:assistants?|agents?|systems?|tools?))\s' + w + r' (?:this|the (?:above|following))\b', 40) for w in ('reading', 'processing', 'summarizing', 'summarising', 'parsing', 'analyzing', 'analysing', 'seeing', 'transcribing', 'indexing')]
    + [('reader_address', 0.5, (w,), 'if you', r'if you(?: are|\'re) (?:an? )?(?:ai|llm|language model|assistant|agent|chatbot|bot|automated)\b') for w in ('ai', 'llm', 'language', 'assistant', 'agent', 'chatbot', 'automated')]
    + [('reader_address', 0.35, (w,), w, w + r',? (?:ai|assistant|model|agent|llm|bot)\b\s*[,:!]') for w in ('dear', 'hey', 'hi', 'hello', 'attention')]
    + [('reader_address', 0.5, ('before',), 'before ', r'before (?:you )?(?:summari[sz]e|answer|respond|reply|solve|continue|proceed|complete|do)\w*\b[^.\n]{0,40}\b(?:first|you must|make sure to)\b')]
    + [('reader_address', 0.5, (w,), w, w + r'\s*[,:]\s*(?:please )?(?:ignore|forward|send|delete|cancel|reveal|print|tell|say|replace|open|upload|run|close|recommend|rate|answer|include|append|email|share|disable|buy|transfer|stop)\b') for w in ('assistant', 'ai', 'agent', 'model', 'llm', 'chatbot', 'bot')]
    + [('reader_address', 0.35, ('user',), 'user ', r'user (?:has (?:consented|agreed|been verified|authori[sz]ed)|is (?:an? )?(?:verified|authori[sz]ed) (?:admin|administrator|user))\b')]
    # a persona built to drop the rules, without the usual jailbreak names
    + [
        ('role_hijack', 0.5, ('persona',), 'persona', r'persona\b[^.\n]{0,60}\b(?:no|never|without|unfiltered|unrestricted|obedien\w*|raw)\b'),
        ('role_hijack', 0.5, ('new',), 'your new ', r'your new (?:persona|identity|role|character|name) is\b'),
        ('role_hijack', 0.3, ('roleplay',), 'roleplay as', r'roleplay as\b'),
        ('role_hijack', 0.3, ('role',), 'role-play as', r'role-?play as\b'),
        ('role_hijack', 0.3, ('playing',), 'you are now playing', r'you are now playing\b'),
        ('role_hijack', 0.5, ('answers',), 'answers ', r'answers (?:every|any|all) (?:questions?|requests?)\b[^.\n]{0,60}\b(?:whatever|no matter|regardless|in full|without)\b'),
        ('role_hijack', 0.5, ('removed',), 'removed', r'(?:restrictions?|filters?|rules|limits|guidelines|safety)(?: \w+){0,2} (?:removed|lifted|uninstalled|turned off|switched off)\b', 40),
        ('role_hijack', 0.5, ('uninstalled',), 'uninstalled', r'(?:filters?|safety|guardrails?)(?: \w+){0,3} (?:been )?uninstalled\b', 60),
        ('role_hijack', 0.5, ('morality',), 'morality', r'(?:beyond|without|no|free (?:of|from)) (?:\w+ )?morality\b', 30),
        ('role_hijack', 0.35, ('existed',), 'existed', r'(?:safety|rules|guidelines|restrictions|filters) existed\b', 40),
    ]
    # settings, markup or "policy updates" that switch safety off
    + [('policy_markup', 0.5, (w,), w, w + r'\w*["\']?\s*[:=]\s*["\']?(?:off|none|disabled|false|0|o|never|block_none|permissive|unrestricted)\b(?=\s*(?:["\',;}\]<]|$)|\s+[\w.]+\s*[:=])') for w in ('safety', 'filter', 'content_filter', 'guardrails', 'refusals', 'refusal', 'censorship', 'moderation', 'disclaimers', 'compliance_level', 'restrictions', 'dangerous', 'harassment', 'refuse')]
    + [('policy_markup', 0.5, (w,), w, r'(?:polic(?:y|ies)|guardrails?|filter(?:s|ing)?|safety|restrictions?|refusals?|moderation)(?: \w+){0,3} (?:is |are |been |were )?' + w + r'\b', 40) for w in ('suspended', 'disabled', 'lifted', 'deactivated')]
    + [
        ('policy_markup', 0.5, ('policy',), 'polic', r'(?:updated|new|latest) (?:\w+ )?(?:usage |content )?polic(?:y|ies)\b[^\n]{0,100}\b(?:may now|are (?:now )?allowed|is (?:now )?allowed|can now|permits?)\b', 20),
        ('policy_markup', 0.35, ('note',), 'note', r'(?:operator|developer|admin|administrator|system) note\b', 20),
        ('policy_markup', 0.35, ('authorization',), 'authorization', r'authorization (?:token|code)\b[^.\n]{0,60}\b(?:granted|comply|override|admin|without restriction)'),
    ]
    + [('policy_markup', 0.5, (w,), '<' + w, '<' + w + r'>\s*(?:disabled|off|none|false|never|all(?: \w+)?)\s*</') for w in ('refusals', 'refusal', 'safety', 'filter', 'filters', 'guardrails', 'censorship', 'moderation', 'allow')]
    # "policy puppetry": a made-up interaction config that allows what it should not
    + [('policy_markup', 0.5, (w,), w, w + r' (?:modes?|responses?|strings?)\s*:', 0) for w in ('allowed', 'blocked')]
    + [('policy_markup', 0.5, ('interaction',), '<interaction', r'<interaction[-_ ]?(?:config|settings|rules)\b')]
    # personas that exist to answer anything
    + [
        ('role_hijack', 0.5, ('two',), 'two ', r'two (?:characters|personas|bots|assistants|versions|modes)\b[^\n]{0,120}\b(?:answers? anything|no (?:rules|filters|restrictions|limits)|unfiltered|uncensored|without (?:rules|restrictions|filters|limits))'),
        ('role_hijack', 0.5, ('obedience',), 'obedience', r'(?:only|sole) (?:value|purpose|goal|rule) is (?:total |complete |blind )?obedience\b', 30),
        ('role_hijack', 0.5, ('obey',), 'obey', r'(?:only|sole) (?:value|purpose|goal|rule) is to (?:obey|comply)\b', 30),
    ]
    + [('role_hijack', 0.5, (w,), w, w + r' (?:grandma|grandmother|grandpa|grandfather|friend|mother|father|uncle|aunt)\b[^\n]{0,160}\b(?:synthesi[sz]\w*|napalm|explosives?|meth|poisons?|weapons?|bombs?)\b', 0) for w in ('late', 'deceased', 'dead')]
    # a task framed as a test, an exercise or a dare, then the task itself
    + [('pretext', 0.5, (w,), w, r'(?:you(?:[\'’]ve| have) been assigned (?:a|the|this|your) (?:new |special )?task|prove (?:that )?you(?:[\'’]re| are) (?:truly |really )?(?:intelligent|smart|capable|sentient)(?: by)?|experimental procedure|for testing purposes(?: only)?|priority task)\s*:\s*\w', 30) for w in ('assigned', 'prove', 'procedure', 'testing', 'priority')]
    + [
        ('instruction_override', 0.6, ('override',), 'override', r'override (?:your |the |all |any )?(?:safety|content|moderation|security|ethical) (?:settings|filters?|rules|protocols?|guidelines|measures|restrictions)\b'),
        ('new_instructions', 0.5, ('new',), 'new ', r'new (?:important )?instructions?\s*[:\-]\s*(?:\w+ )?(?:reveal|print|output|ignore|say|tell|send|write|give|respond|answer|delete|forward|include|disregard|forget)\b'),
    ]
    # a task dropped for another, in words other than "ignore the instructions"
    + [('instruction_override', 0.35, (v,), v, v + r'\b[^.\n]{0,30}\b(?:(?:previous|prior|preceding|earlier|former) |all (?:the |your |of the )?)(?:tasks|assignments|information)\b') for v in ('forget', 'ignore', 'disregard', 'leave', 'remove', 'drop', 'abandon')]
    + [('prompt_extraction', 0.6, (v,), v, v + r' everything in the previous section\b') for v in ('repeat', 'output', 'print', 'copy', 'recite')]
    + [
        ('instruction_override', 0.35, ('mind',), 'changed my mind', r"changed my mind\b[^.\n]{0,20}\b(?:do not|don't|dont|stop)\b[^.\n]{0,40}\b(?:task|instructions?)\b"),
        ('prompt_extraction', 0.6, ('written',), 'written at the', r'written at the (?:beginning|start|top) of (?:this|the|your) (?:prompt|conversation|context|instructions)'),
        ('new_instructions', 0.35, ('section',), 'new section', r'new section\s*(?:\n|$)'),
    ]
    # instructions that forbid refusing
    + [
        ('refusal_suppression', 0.5, ('never',), 'never ', r'never (?:say|use|write|include|mention|apologi[sz]e|output)\b[^.\n]{0,30}["\'](?:i\'m sorry|i am sorry|sorry|i can\'t|i cannot|as an ai|unfortunately|i apologi[sz]e)'),
        ('refusal_suppression', 0.5, ('apologize',), 'never apologize', r'never apologi[sz]e'),
        ('refusal_suppression', 0.35, ('disclaimers',), 'disclaimer', r'(?:do not|don\'t|never|no|without|skip(?: the)?) (?:include |add |give |any |the )*disclaimers?\b', 30),
        ('refusal_suppression', 0.35, ('warnings',), 'warning', r'(?:do not|don\'t|never|no|without|skip(?: the)?) (?:include |add |give |any |the )*warnings?\b', 30),
        ('refusal_suppression', 0.35, ('caveats',), 'caveat', r'(?:do not|don\'t|never|no|without|skip(?: the)?) (?:include |add |any |the )*caveats?\b', 30),
        ('refusal_suppression', 0.5, ('refusing',), 'refusing is not', r'refusing is not (?:an option|allowed|permitted)'),
        ('refusal_suppression', 0.5, ('refusal',), 'refusal', r'(?:any )?refusals? (?:is|are|will be) (?:not (?:an option|allowed|permitted)|treated as)'),
        ('refusal_suppression', 0.5, ('forbidden',), 'forbidden from', r'forbidden from (?:using|saying|refusing|mentioning)'),
        ('refusal_suppression', 0.5, ('must',), 'must not refuse', r'must not refuse'),
    ]
    + [('refusal_suppression', 0.5, (w,), w, w + r' (?:your|every|each|all) (?:reply|response|answer)s? with ["\']?(?:sure|absolutely|yes|of course|certainly|here is|here\'s)') for w in ('begin', 'start')]
)  # fmt: skip


class _Rule:
    __slots__ = ('signal', 'weight', 'gates', 'sub', 'pattern', 'word_start', 'back')

    def __init__(self, signal, weight, gates, sub, pattern, back=0):
        self.signal = signal
        self.weight = weight
        self.gates = gates
        self.sub = sub
        self.pattern = re.compile(pattern)
        self.word_start = sub[0].isalnum() and not back
        self.back = back


RULES = tuple(_Rule(*r) for r in _RULES)
_BY_GATE = {}  # first gate word -> rules, in rule order
for _i, _r in enumerate(RULES):
    if _r.gates:
        _BY_GATE.setdefault(_r.gates[0], []).append((_i, _r))
_UNGATED = tuple((i, r) for i, r in enumerate(RULES) if not r.gates)
SIGNAL_NAMES = tuple(dict.fromkeys(r.signal for r in RULES)) + (
    'encoded_payload',
    'hidden_text',
    'learned_model',
)
GATES = _GATES = frozenset(g for r in RULES for g in r.gates)
_MAX_MATCH = 420


_NAMED = 0.1  # the learned model's lowest probability named as a signal
LONG_TEXT = 2000  # characters: past this, signals add up within a window only
WINDOW = 1200


def gates(text):
    """The gate words of a leet skeleton text."""
    return _GATES.intersection(WORD_BREAKS(text).split())


def _match(rule, text):
    sub, pattern, n = rule.sub, rule.pattern, len(text)
    i = text.find(sub)
    while i >= 0:
        if rule.back:
            m = pattern.search(text, max(0, i - rule.back), min(n, i + _MAX_MATCH))
            if m is not None:
                return m
        elif not rule.word_start or i == 0 or not text[i - 1].isalnum():
            m = pattern.match(text, i, min(n, i + _MAX_MATCH))
            if m is not None:
                return m
        i = text.find(sub, i + 1)
    return None


def _signals(text, present=None):
    """{signal: (weight, start, end)} in `text`: a skeleton with leetspeak read as
    letters (`Folded.leet`). `present`: its gate words, when known."""
    found = {}
    if present is None:
        present = gates(text)
    candidates = list(_UNGATED)
    for gate in present:
        candidates.extend(_BY_GATE.get(gate, ()))
    candidates.sort(key=lambda c: c[0])
    for _, rule in candidates:
        if found.get(rule.signal, (0,))[0] >= rule.weight:
            continue
        if all(g in present for g in rule.gates):
            m = _match(rule, text)
            if m is not None:
                found[rule.signal] = (rule.weight, m.start(), m.end())
    return found


def score(
    leet,
    original=None,
    *,
    present=None,
    tokens=None,
    raw=None,
    words=None,
    model=None,
):
    """(score, [(signal, start, end)]) for a leet skeleton text (`Folded.leet`);
    `original` (the folded text) is where encoded payloads are looked for (base64
    is case sensitive), `raw` the text as sent (Unicode tag characters, which
    folding removes). `present` (its gate words) and `tokens` (its long tokens)
    may be given when already computed. Texts hidden by an encoding
    (`aegisflow.policy.decode`) are decoded once and scored: a signal in one is
    ``encoded_payload``; tag characters in a prompt are ``hidden_text``.

    With a learned `model` (`aegisflow.policy.injection_model`), the score is the
    higher of the signals' sum and the model's probability (over `words`, the
    skeleton's words, when already split); the model is named as the
    signal ``learned_model`` when it reaches 0.5 (its calibrated point) or decides
    a score of at least 0.1 (below that it is no reason for anything)."""
    found = _signals(leet, present)
    source = original if original is not None else leet
    decoded = hidden(raw if raw is not None else source, source, tokens)
    if decoded.tags:
        found['hidden_text'] = (0.3, 0, 0)
    if 'encoded_payload' not in found:
        for _, start, end, inner in decoded.items:
            signals = _signals(LEET(inner.lower()))
            if signals:
                weight = max(w for w, _, _ in signals.values())
                found['encoded_payload'] = (max(weight, 0.5), start, end)
                break
    total = min(1.0, _total(found, len(leet)))
    if model is not None:
        if words is None:
            words = WORD_BREAKS(leet).split()
        p = model.probability(words)
        if p >= 0.5 or p > max(total, _NAMED):
            found['learned_model'] = (p, 0, 0)
            total = max(total, p)
    return total, [(name, s, e) for name, (_, s, e) in found.items()]


def _total(found, length):
    """The signals' summed weight; in a long text, only signals within `WINDOW`
    characters of each other add up (a long document does not pile scattered weak
    words into a block; a strong signal still counts alone)."""
    weights = [(s, w) for w, s, _ in found.values()]
    if length <= LONG_TEXT or len(weights) < 2:
        return sum(w for _, w in weights)
    weights.sort()
    return max(
        sum(w for s, w in weights if start <= s < start + WINDOW)
        for start, _ in weights
    )
