"""What a question is about, for leaderboards per category: a deterministic, offline categoriser. Pure.

Chatbot Arena shows boards per prompt category (coding, math, creative writing, hard prompts, multi-turn, long
queries); its labels come from a large model. Corral's come from rules, in the languages its users write (English,
French, Spanish, German, Chinese, Korean), so they need no network and no model, and the same question always gets
the same categories. A question's categories are an integer bit mask, taken when the question is stored; the
vote keeps its judged round's mask, and the counts table keys on it, so a board per category reads counts.

Adding a category is one `Category` in `CATEGORIES` with a new bit (a migration then backfills stored questions).
How well the rules agree with a labelled sample is measured by tests/arena/test_categories.py.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from arena.style import estimate_tokens, outside_code

LONG_QUERY_TOKENS = 500  # Chatbot Arena's "longer query": 500 tokens or more in the question
_READ = 8_000  # the rules read a question's first characters only: a pasted log says nothing more past them


class _Pattern:
    """A regular expression compiled when first used: the command line imports this registry for its category
    names, and compiling every rule's vocabulary at import would add about 20 ms to each start."""

    def __init__(self, source: str, flags: int = 0) -> None:
        self._source, self._flags = source, flags

    @functools.cached_property
    def _compiled(self) -> re.Pattern[str]:
        return re.compile(self._source, self._flags)

    def search(self, text: str) -> re.Match[str] | None:
        """As `re.Pattern.search`."""
        return self._compiled.search(text)

    def findall(self, text: str) -> list[Any]:
        """As `re.Pattern.findall`."""
        return self._compiled.findall(text)

    def sub(self, replacement: str, text: str) -> str:
        """As `re.Pattern.sub`."""
        return self._compiled.sub(replacement, text)

    def split(self, text: str) -> list[str]:
        """As `re.Pattern.split`."""
        return self._compiled.split(text)


# a translation request: its verb near the start ("translate …", "traduis en anglais : …", "请翻译…")
_TRANSLATE = _Pattern(r"^\W{0,3}(?:[^\W\d_]+\W+){0,3}?(?:translat|tradu[icz]|übersetz)|^.{0,15}?(?:翻译|翻譯|번역)")
_QUOTED = _Pattern(r"\"[^\"]*\"|“[^”]*”|«[^»]*»|「[^」]*」|‘[^’]*’|„[^“]*“|(?<!\w)'[^'\n]*'(?!\w)")


@dataclass(frozen=True)
class Question:
    """What the rules read: the question (lower-cased, its start), its round in the conversation, its length."""

    text: str
    turn_index: int
    tokens: int
    prose_tokens: int  # outside fenced code: a pasted program makes a question long, not hard

    @classmethod
    def of(cls, text: str, turn_index: int = 0) -> Question:
        """A stored question as the rules read it: what a translation request quotes is not what it asks about."""
        read = text[:_READ].lower()
        if _TRANSLATE.search(read[:80]):  # the quoted text, or what follows a colon, is what is to be translated
            read = _QUOTED.sub(" ", read).partition(":")[0].partition("：")[0]
        return cls(read, turn_index, estimate_tokens(text), estimate_tokens(outside_code(text[:_READ])))


@dataclass(frozen=True)
class Category:
    """One category: its stored bit, how boards and exports name it, and its rule (given the categories of the
    entries before it in `CATEGORIES`, so hard prompts can build on coding and math)."""

    name: str
    label: str
    bit: int
    explain: str
    applies: Callable[[Question, frozenset[str]], bool]
    questions: str  # what its questions are called in a sentence: "votes on coding questions"


_LETTERS = "a-z0-9_àâäæçéèêëîïôöœùûüÿñáíóúß"  # a Latin word's edge: a Chinese character beside it is one


def _words(words: str) -> _Pattern:
    """Whole words or phrases of a spaced script, given as regular expressions joined by "|" (the question is
    lower-cased)."""
    alternatives = words  # the lookarounds make the order of the alternatives irrelevant: a match is a whole word
    return _Pattern(rf"(?<![{_LETTERS}-])(?:{alternatives})(?![{_LETTERS}])")


def _chars(pieces: str) -> _Pattern:
    """Substrings of unspaced scripts (Chinese) or of Korean, where particles follow the stem, joined by "|"."""
    return _Pattern("|".join(sorted(map(re.escape, pieces.split("|")), key=len, reverse=True)))


def _any(text: str, *patterns: _Pattern) -> bool:
    return any(p.search(text) for p in patterns)


def _count(text: str, *patterns: _Pattern) -> int:
    return sum(len(p.findall(text)) for p in patterns)


# --- coding -------------------------------------------------------------------------------------------------------

_CODE_SHAPE = _Pattern(  # [ \t]* rather than \s* at line starts: \s would run across lines (quadratic)
    r"```|^[ \t]*(?:def|fn|func)[ \t]+\w+[ \t]*\(|^[ \t]*class[ \t]+\w+[ \t]*[:({]|^[ \t]*#include[ \t]*[<\"]"
    r"|^[ \t]*(?:import[ \t]+[\w.]+|from[ \t]+[\w.]+[ \t]+import[ \t]+[\w*, ]+)[ \t]*$"
    r"|^[ \t]*(?:const|var)[ \t]+\w+[ \t]*=[ \t]*\S"
    r"|^[ \t]*(?:public|private|protected)[ \t]+(?:static[ \t]+)?\w+[ \t]+\w+"
    r"|console\.log|system\.out|(?<!\w)printf?\(|(?<![\w.])[a-z_]\w*\.[a-z_]\w*\([^()\n]*\)[ \t]*;|\w::\w"
    r"|</?[a-z][a-z0-9]*(?:[ \t][^<>\n]{0,200})?>|(?<!\w)[a-z_]\w*\(\)"
    r"|select[ \t]+(?:\*|\w+(?:[ \t]*,[ \t]*\w+)*)[ \t]+from[ \t]+\w"
    r"|^[ \t]*[{}][ \t]*$|[\w)\]][ \t]*;[ \t]*$|traceback \(most recent call last\)|(?<!\w)npm |(?<!\w)pip install",
    re.MULTILINE,
)
_CODE_WORDS = _words(
    r"code|coding|source code|programming|programación|programmation|programmer|programmieren"
    r"|quellcode|código|codigo|debug\w*|déboguer|depurar|compiler|compil(?:ing|ation) error|regex"
    r"|regular expression|expression régulière|sql|api|json|yaml|html|css|javascript|typescript|python"
    r"|c\+\+|c#|golang|kotlin|php|powershell|linux|git|docker\w*|kubernetes|numpy|pytorch|django"
    r"|node\.?js|excel formula|vba|snippet|stack trace|traceback|segfault|pthreads?|null pointer"
    r"|unit tests?|refactor\w*|linked list|binary (?:search )?tree|hash ?map|leetcode|database"
    r"|postgres(?:ql)?|mysql|sqlite|mongodb|redis|base de données|datenbank|endpoint|command line"
    r"|ligne de commande|repository|dépôt git|programmierung"
)
_CODE_CHARS = _chars(
    "代码|c语言|c++|編程|编程|调试|报错|数据库|正则|코드|프로그래밍|디버그|디버깅|데이터베이스|파이썬|자바스크립트|정규식"
)
# words that also name code but often do not: they count only beside another coding signal
_WEAK_CODE = _words(
    r"rust|swift|ruby|shell|script|skript|class|classe|klasse|method|méthode|function|fonction|función"
    r"|funktion|variable|array|tableau|string|boucle|loop|bug|terminal|library|librairie|bibliothèque"
    r"|implement\w*|implémente\w*|implementier\w*|algorithm|algorithme|algoritmo|algorithmus|framework"
    r"|recursion|recursive|récursi\w+|programs?|programme|sort\w*|query|threads?|frontend|backend"
    r"|requête|consulta|abfrage|compile|java|react|pandas|flask|bash|exception|software|logiciel|csv"
    r"|one[- ]liner|files?|fichiers?|directory|folder"
)
_WEAK_CODE_CHARS = _chars("函数|程序|算法|接口|实现|脚本|함수|프로그램|알고리즘|자바|구현|정렬|스크립트")
_NOT_CODE = _words(
    r"code napol[ée]on|code civil|code pénal|code du travail|code de la route|code des impôts"
    r"|código (?:civil|penal|técnico|de comercio|de la circulación)|building codes?|zip code"
    r"|postal code|code postal|dress code|da vinci code|morse code|code of conduct|python snake"
    r"|serpent python|java island|île de java|tv programs?|programme télé|programme tv"
    r"|programme scolaire|shell (?:company|oil)|movie script|java coffee|python roller coaster"
)
_NOT_CODE_CHARS = _chars("드레스 코드|드레스코드|法律程序|诉讼程序")


def _coding(q: Question, _before: frozenset[str]) -> bool:
    text = _NOT_CODE_CHARS.sub(" ", _NOT_CODE.sub(" ", q.text))
    if _CODE_SHAPE.search(text):
        return True
    return _any(text, _CODE_WORDS, _CODE_CHARS) or _count(text, _WEAK_CODE, _WEAK_CODE_CHARS) >= 2


# --- math ---------------------------------------------------------------------------------------------------------

_MATH_SHAPE = _Pattern(
    r"\\(?:frac|int|sum|sqrt|lim|prod|cdot|times|partial|infty|binom|mathbb|le|ge|neq|pi)(?![a-z])"
    r"|\$[^$\n]*[=^_\\+][^$\n]*\$"
    r"|(?<![a-z])[a-z][ \t]*\^[ \t]*\d|\d[ \t]*\^[ \t]*\d|(?<![a-z])[a-z]\([ \t]*[a-z][ \t]*\)[ \t]*="
    r"|(?<!\d)\d+[ \t]*[+\-*/×÷][ \t]*\d+[ \t]*=|(?<![a-z0-9])\d*[a-z][ \t]*[+\-][ \t]*\d+[ \t]*=[ \t]*\d+"
    r"|[=≤≥≠∫∑√π∞±][ \t]*\d"
    r"|\d[ \t]*%[ \t]*(?:of|de|del|von)[ \t]+\d|[∫∑√∞≤≥≠∂]|(?<![a-z])d[xy]/d[xyt](?![a-z])|(?<![a-z])mod[ \t]+\d",
)
# mathematics' own words: one is enough
_MATH_WORDS = _words(
    r"math|maths|mathematics|mathématiques?|matemáticas?|mathematik|equations?|équations?"
    r"|ecuaci[oó]n(?:es)?|gleichung(?:en)?|solve for|integral\w*|intégrale\w*|derivative of"
    r"|dérivée\w*|derivada\w*|ableitung\w*|differentiate|probabilit(?:y|ies)|probabilités?"
    r"|probabilidad\w*|wahrscheinlichkeit\w*|prove that|démontre\w*|demuestra\w*|beweise\w*"
    r"|theorem|théorème|teorema|polynomials?|polynôme\w*|polinomio\w*|logarithm\w*|logarithme\w*"
    r"|factorial|prime numbers?|nombres? premiers?|números? primos?|primzahl\w*|square root"
    r"|racine carrée|raíz cuadrada|quadratwurzel|hypotenuse|hypoténuse|standard deviation"
    r"|écart[- ]type|expected value|espérance mathématique|eigenvalues?|eigenvectors?|eigenwert\w*"
    r"|valeurs? propres?|calculus|algebra\w*|algèbre|álgebra|arithmetic|gcd|pgcd|lcm|ppcm"
    r"|combinatori\w+|permutations?|simplify|simplifie\w*|simplifica\w*|vereinfache\w*"
)
# words that are mathematics beside another sign only
_WEAK_MATH = _words(
    r"triangle|triángulo|dreieck|matrix|matrices|matrice|matriz|vector|vecteur|median|médiane|mediana"
    r"|variance|radius|perimeter|périmètre|perímetro|percent\w*|pourcentage|porcentaje|prozent"
    r"|divisible|divisors?|diviseurs?|geometr\w+|géométri\w+|calculate|calcule\w*|calcula\w*"
    r"|berechne\w*|compute|fraction\w*|area|aire|fläche|volume|limit|limite|derivatives?|proof"
)
_MATH_CHARS = _chars(
    "数学|方程|求解|积分|导数|微分|概率|证明|几何|三角形|面积|体积|质数|素数|平方根|多项式|等于多少|矩阵|极限"
    "|수학|방정식|적분|미분|확률|증명|삼각형|넓이|면적|부피|제곱근|행렬|극한"
)
_WEAK_MATH_CHARS = _chars("计算|계산")
_GENERIC_MATH = _Pattern(
    r"calculat\w*|calcul\w*|berechn\w*|comput\w*|median|percent\w*|pourcentage|porcentaje|prozent|matri\w+"
    r"|vector|vecteur|variance|计算|矩阵|계산|행렬"
)
_QUANTITY_QUESTION = _Pattern(
    r"how many|how much|how fast|how far|when will|combien|cuánt[oa]s?"
    r"|wie viele?|wie lange|多少|几个|几只|几天|몇|얼마"
)
_NUMBER = _Pattern(r"(?<![a-z0-9.])\d+(?:[.,]\d+)?(?![a-z0-9])|[一二三四五六七八九十百千万]+(?:个|只|人|元|天|米|公里)")


def _math(q: Question, before: frozenset[str]) -> bool:
    if "coding" in before:  # code is full of operators and numbers, and computes: only mathematics' own words count
        return _any(_GENERIC_MATH.sub(" ", q.text), _MATH_WORDS, _MATH_CHARS)
    if _MATH_SHAPE.search(q.text) or _any(q.text, _MATH_WORDS, _MATH_CHARS):
        return True
    if _count(q.text, _WEAK_MATH, _WEAK_MATH_CHARS) + bool(_NUMBER.search(q.text)) >= 2:
        return True
    # a word problem: a question of quantity about at least two numbers
    return bool(_QUANTITY_QUESTION.search(q.text)) and len(_NUMBER.findall(q.text)) >= 2


# --- creative writing ---------------------------------------------------------------------------------------------

_CREATIVE_FORMS = _words(
    r"poems?|poetry|poème\w*|poésie\w*|poemas?|poesía|gedicht\w*|haikus?|haïkus?|sonnets?|soneto"
    r"|limericks?|paroles de chanson|letra de (?:una )?canción|songtext|liedtext"
    r"|short stor(?:y|ies)|fairy ?tales?|bedtime story|contes?|cuento\w*|märchen|fables?|fábula"
    r"|screenplay|drehbuch|ballad\w*|ballade|strophe\w*|estrofa\w*|rhymes?|rimes?|reime?n?"
    r"|role-?play\w*|jeu de rôle|fan ?fiction|kurzgeschichte|microrrelato"
)
_CREATIVE_CHARS = _chars(
    "一首诗|写诗|作诗|藏头诗|七言|五言|绝句|律诗|宋词|童话|对联|相声|小品剧本"
    "|시를|시 한 편|시 한편|시조|동시를|가사를|동화를|대본|랩 가사"
)
# Chinese and Korean: a verb of writing or telling beside a creative form ("写一个关于猫的故事", "소설을 써 줘")
_CREATIVE_ASK = _Pattern(
    r"(?:写|编|创作|讲|续写|来)[^。？！\n]{0,12}(?:诗|故事|小说|歌|剧本|笑话|童话|对联|散文|段子|歌词)"
    r"|(?:诗|故事|小说|歌|剧本|笑话|童话|段子)[^。？！\n]{0,4}(?:写|编|创作)"
    r"|(?:시|이야기|소설|동화|가사|노래|대본|농담|단편|시나리오|랩)[을를이가]?[^.?!\n]{0,12}(?:써|쓰|지어|만들어|들려|작성)"
)
_CREATIVE_NOUNS = _words(
    r"stor(?:y|ies)|tales?|songs?|jokes?|script|scene|dialogue|monologue|chanson\w*|histoire\w*"
    r"|blague\w*|dialogue\w*|historia\w*|canción\w*|chistes?|guion|geschichte\w*|lied\w*|witz\w*"
    r"|slogan\w*|novel|chapter|[a-zäöüß]+geschichte|nouvelle|scénario|lyrics|verses?|rap"
)
_WRITE_VERBS = _words(
    r"write|compose|tell me|make up|invent|imagine|create|continue|écri\w*|raconte\w*|invente\w*"
    r"|imagine\w*|compose\w*|escrib\w*|cuéntame|cuenta\w*|inventa\w*|imagina\w*|schreib\w*|erzähl\w*"
    r"|erfinde\w*|dichte\w*"
)
_NOT_CREATIVE = _words(
    r"story behind|histoire de (?:la|le|l'|les)|l'histoire d\w*|historia de (?:la|el|los|las)"
    r"|geschichte de[rs]|geschichte von|success stor(?:y|ies)|user stor(?:y|ies)"
    r"|stories in (?:jira|agile)|(?:the|this|that) (?:poem|song|lyrics|sonnet|verse|haiku)s?"
    r"|lyrics (?:of|to)|poem by|who wrote|what is a (?:sonnet|haiku|limerick|ballad|fable)"
    r"|(?:über|about) die geschichte|die geschichte (?:\w+s|des|der)|verses? (?:in|of) the bible"
)
_NOT_CREATIVE_CHARS = _chars("这首歌|这首诗|歌词是什么意思|是谁写的")


def _creative_writing(q: Question, _before: frozenset[str]) -> bool:
    text = _NOT_CREATIVE_CHARS.sub(" ", _NOT_CREATIVE.sub(" ", q.text))
    if _any(text, _CREATIVE_FORMS, _CREATIVE_CHARS, _CREATIVE_ASK):
        return True
    return bool(_WRITE_VERBS.search(text)) and bool(_CREATIVE_NOUNS.search(text))


# --- hard prompts -------------------------------------------------------------------------------------------------
# Chatbot Arena calls a prompt hard when it meets 6 of 7 criteria (specificity, domain knowledge, complexity,
# problem-solving, creativity, technical accuracy, real-world application), judged by a large model. The rules
# below look for a sign of each criterion and call a prompt hard when it shows at least HARD_SIGNS of them.

HARD_SIGNS = 4
HARD_PROSE_TOKENS = 60  # a hard prompt states its problem: short questions were never hard in the labelled sample
_CONSTRAINTS = _words(
    r"must|should|without|at (?:least|most)|exactly|only|ensure|requirements?|constraints?|doit"
    r"|doivent|sans|au (?:moins|plus)|uniquement|exigences?|contraintes?|debe\w*|sin|solo|muss|müssen"
    r"|soll\w*|ohne|genau|mindestens|höchstens|o\([^)]*\)"
)
_CONSTRAINT_CHARS = _chars("必须|要求|不能|不要|至少|最多|只能|确保|반드시|최소|최대|없이|조건")
_DOMAIN = _words(
    r"physics|chemi\w+|biolog\w+|medic\w+|clinical|legal|law|tax\w*|financ\w+|econom\w+|statisti\w+"
    r"|engineering|thermodynami\w+|quantum|neural|machine learning|physique|chimie|juridique|droit"
    r"|fiscal\w*|física|química|médic\w+|physik|chemie|recht\w*|steuer\w*|architecture|architektur"
    r"|arquitectura|protocol\w*|distributed|concurren\w+|latency|scalab\w+|security|cryptograph\w+"
    r"|compiler|kernel|genom\w+|pharmac\w+|regulat\w+|réglement\w*|complian\w+|conformité|gdpr|rgpd"
    r"|dsgvo|hipaa|fda|haccp|iso \d+|audit\w*|personal data|data protection|datenschutz"
    r"|protection des données|protección de datos|privacy|contract\w*|contrat\w*|vertrag\w*|liabilit\w+"
    r"|employment law|labou?r law|droit du travail|arbeitsrecht|ingenier\w+|ingénieur\w*|ingenieur\w*"
    r"|patients?|clinic\w*|dos(?:e|age)s?|diagnos\w+|anticoagul\w+|cybersecurity|cybersicherheit|nis2"
    r"|richtlinie\w*|directive|derecho|impuesto\w*|juríd\w+|structural|geotechni\w+|géotechni\w+"
)
_DOMAIN_CHARS = _chars(
    "物理|化学|生物|医学|法律|税|金融|经济|统计|工程|量子|架构|并发|分布式|물리|화학|의학|법률|세금|금융|경제|통계|아키텍처|동시성|분산"
)
_SOLVE = _words(
    r"design|optimi[sz]\w*|prove|derive|debug\w*|analy[sz]\w*|compare|trade-?offs?|why|explain how"
    r"|step by step|conçoi[st]|concevoir|optimise\w*|démontre\w*|analyse\w*|pourquoi|compar\w+"
    r"|diseñ\w+|optimiza\w*|analiza\w*|por qué|entw[ei]rf\w*|optimier\w*|analysier\w*|warum"
    r"|vergleich\w*"
)
_SOLVE_CHARS = _chars("设计|优化|证明|推导|分析|比较|为什么|权衡|설계|최적화|증명|유도|분석|비교|왜")
_NOVEL = _words(
    r"novel|original|creative\w*|innovative|propose|come up with|brainstorm\w*|alternative\w*|design"
    r"|invent\w*|créati\w+|propose\w*|imagine\w*|original\w*|creativ\w+|propón\w*|kreativ\w*"
    r"|schlage\w* vor"
)
_NOVEL_CHARS = _chars("创意|创新|新颖|设计|提出|창의|새로운|설계|제안")
_PRECISE = _words(
    r"precise\w*|exact\w*|correct\w*|accurate\w*|rigorous\w*|précis\w*|exacte?s?|rigoureu\w+"
    r"|precis[oa]s?|riguros\w+|präzise\w*|korrekt\w*"
)
_PRECISE_CHARS = _chars("精确|准确|严格|正确|정확|엄밀")
_PRACTICAL = _words(
    r"my|our|we|production|company|client\w*|customers?|users?|team|project|business|mon|ma|mes|notre"
    r"|nos|nous|entreprise|projet|équipe|utilisateurs?|mi|mis|nuestr[oa]s?|empresa|proyecto|equipo"
    r"|usuarios?|mein\w*|unser\w*|firma|projekt|kunden|nutzer"
)
_PRACTICAL_CHARS = _chars("我的|我们|公司|项目|客户|用户|团队|生产|우리|회사|프로젝트|고객|사용자|팀")
_SENTENCE = _Pattern(r"[.?!;。？！；]\s*|\n+")


def hard_signs(q: Question, before: frozenset[str]) -> dict[str, bool]:
    """Which of the seven criteria of a hard prompt `q` shows a sign of (coding or math count as knowledge,
    problem-solving and precision)."""
    technical = bool(before & {"coding", "math"})
    parts = [p for p in _SENTENCE.split(q.text) if len(p.strip()) > 3]
    return {
        "specificity": q.tokens >= 25 and _any(q.text, _CONSTRAINTS, _CONSTRAINT_CHARS, _NUMBER),
        "domain_knowledge": technical or _any(q.text, _DOMAIN, _DOMAIN_CHARS),
        "complexity": q.tokens >= 40 and len(parts) >= 3,
        "problem_solving": technical or _any(q.text, _SOLVE, _SOLVE_CHARS),
        "creativity": _any(q.text, _NOVEL, _NOVEL_CHARS),
        "technical_accuracy": technical or _any(q.text, _PRECISE, _PRECISE_CHARS),
        "real_world": _any(q.text, _PRACTICAL, _PRACTICAL_CHARS),
    }


def _hard_prompt(q: Question, before: frozenset[str]) -> bool:
    if q.prose_tokens < HARD_PROSE_TOKENS:
        return False
    signs = hard_signs(q, before)
    # a long, personal question is not hard for that: it must call on a field's knowledge
    return signs["domain_knowledge"] and sum(signs.values()) >= HARD_SIGNS


# --- the registry -------------------------------------------------------------------------------------------------

CATEGORIES: tuple[Category, ...] = (
    Category("coding", "Coding", 1, "asks for, about or with computer code", _coding, "coding questions"),
    Category("math", "Math", 2, "a mathematical problem to solve, compute or prove", _math, "math questions"),
    Category(
        "creative_writing",
        "Creative writing",
        4,
        "a poem, story, song, script or joke to write",
        _creative_writing,
        "creative writing requests",
    ),
    Category(
        "hard_prompts",
        "Hard prompts",
        8,
        f"{HARD_PROSE_TOKENS}+ tokens of prose showing {HARD_SIGNS} of Chatbot Arena's 7 criteria of a hard prompt, "
        "domain knowledge among them",
        _hard_prompt,
        "hard prompts",
    ),
    Category(
        "multi_turn",
        "Multi-turn",
        16,
        "asked after at least one earlier round",
        lambda q, _: q.turn_index >= 1,
        "follow-up questions",
    ),
    Category(
        "long_query",
        "Long queries",
        32,
        f"{LONG_QUERY_TOKENS} tokens or more",
        lambda q, _: q.tokens >= LONG_QUERY_TOKENS,
        "long queries",
    ),
)
BY_NAME: dict[str, Category] = {c.name: c for c in CATEGORIES}


def categorise(text: str, turn_index: int = 0) -> int:
    """The categories of a question asked at round `turn_index` (0 = the first), as a bit mask."""
    question = Question.of(text, turn_index)
    found: set[str] = set()
    mask = 0
    for category in CATEGORIES:
        if category.applies(question, frozenset(found)):
            found.add(category.name)
            mask |= category.bit
    return mask


def names(mask: int | None) -> list[str]:
    """The names of the categories in `mask`, in `CATEGORIES` order (none for None: a question stored before
    categories were)."""
    return [c.name for c in CATEGORIES if mask and mask & c.bit]


def bit(name: str) -> int:
    """The bit of the category called `name`; a clear ValueError for an unknown name."""
    try:
        return BY_NAME[name].bit
    except KeyError:
        known = ", ".join(BY_NAME)
        raise ValueError(f"there is no category '{name}': the categories are {known}") from None


def mask_of(category_names: Iterable[str]) -> int:
    """The bit mask of these category names."""
    mask = 0
    for name in category_names:
        mask |= bit(name)
    return mask
